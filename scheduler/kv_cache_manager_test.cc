// KvCacheManager: block-table growth, failure without side effects, prefix reuse across
// sequences (full blocks only, never the last token), caching, freeing, eviction and stats.
#include "scheduler/kv_cache_manager.h"

#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<int32_t> Iota(int32_t n, int32_t start = 0) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(KvCacheManagerTest, GrowsTablesBlockByBlock) {
  KvCacheManager kv(4, 8, /*enable_prefix_caching=*/false);
  BlockTable t;
  ASSERT_TRUE(kv.AllocateSlots(&t, 5));
  EXPECT_EQ(t.num_blocks(), 2);
  ASSERT_TRUE(kv.AllocateSlots(&t, 8));  // still fits
  EXPECT_EQ(t.num_blocks(), 2);
  ASSERT_TRUE(kv.AllocateSlots(&t, 9));
  EXPECT_THAT(t.block_ids(), ElementsAre(0, 1, 2));
  EXPECT_TRUE(kv.CheckInvariants({{&t, 9}}).ok());
  EXPECT_EQ(kv.Usage().num_used_blocks, 3);
  kv.Free(&t);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(kv.Usage().num_free_blocks, 8);
  EXPECT_TRUE(kv.CheckInvariants({}).ok());
}

TEST(KvCacheManagerTest, FailsWithoutSideEffectsWhenBlocksRunOut) {
  KvCacheManager kv(4, 3, false);
  BlockTable a, b;
  ASSERT_TRUE(kv.AllocateSlots(&a, 8));
  EXPECT_FALSE(kv.AllocateSlots(&b, 5));  // needs 2, 1 free
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(kv.Usage().num_free_blocks, 1);
  ASSERT_TRUE(kv.AllocateSlots(&b, 4));
  EXPECT_FALSE(kv.AllocateSlots(&a, 9));
  EXPECT_EQ(a.num_blocks(), 2);
  EXPECT_TRUE(kv.CheckInvariants({{&a, 8}, {&b, 4}}).ok());
}

TEST(KvCacheManagerTest, SharesFullPrefixBlocksAcrossSequences) {
  KvCacheManager kv(4, 10, true);
  const std::vector<int32_t> a_tokens = Iota(10);  // blocks [0..3] [4..7] [8, 9]
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 10, kv.FindCachedPrefix(a_tokens)));
  kv.CacheFullBlocks(&a, a_tokens, 10);
  EXPECT_EQ(a.num_cached_blocks(), 2);

  // b shares the first 8 tokens, then differs.
  std::vector<int32_t> b_tokens = Iota(8);
  b_tokens.insert(b_tokens.end(), {50, 51, 52});
  CachedPrefix prefix = kv.FindCachedPrefix(b_tokens);
  EXPECT_THAT(prefix.block_ids, ElementsAre(a.block_ids()[0], a.block_ids()[1]));
  EXPECT_EQ(prefix.num_tokens, 8);
  BlockTable b;
  ASSERT_TRUE(kv.AllocateSlots(&b, 11, prefix));
  EXPECT_EQ(b.num_blocks(), 3);
  EXPECT_EQ(b.block_ids()[0], a.block_ids()[0]);
  EXPECT_NE(b.block_ids()[2], a.block_ids()[2]);
  EXPECT_EQ(kv.pool().ref_count(a.block_ids()[0]), 2);
  EXPECT_TRUE(kv.CheckInvariants({{&a, 10}, {&b, 8}}).ok());

  // A third one diverging inside the second block shares only the first.
  std::vector<int32_t> c_tokens = {0, 1, 2, 3, 4, 5, 99, 7, 8};
  EXPECT_EQ(kv.FindCachedPrefix(c_tokens).num_tokens, 4);

  const PrefixCacheStats& stats = kv.prefix_cache_stats();
  EXPECT_EQ(stats.queries, 2);
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.query_tokens, 21);
  EXPECT_EQ(stats.hit_tokens, 8);
}

TEST(KvCacheManagerTest, NeverCachesTheLastToken) {
  KvCacheManager kv(4, 10, true);
  const std::vector<int32_t> tokens = Iota(8);  // exactly two blocks
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 8, kv.FindCachedPrefix(tokens)));
  kv.CacheFullBlocks(&a, tokens, 8);
  EXPECT_EQ(a.num_cached_blocks(), 2);
  // The same 8 tokens again: the second block holds the last token, which must be computed.
  EXPECT_EQ(kv.FindCachedPrefix(tokens).num_tokens, 4);
  // With one more token both blocks are reusable.
  EXPECT_EQ(kv.FindCachedPrefix(Iota(9)).num_tokens, 8);
  EXPECT_EQ(kv.FindCachedPrefix(Iota(3)).num_tokens, 0);
  EXPECT_EQ(kv.FindCachedPrefix({}).num_tokens, 0);
}

TEST(KvCacheManagerTest, FreedCachedBlocksServeLaterSequencesUntilEvicted) {
  KvCacheManager kv(2, 4, true);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 5, kv.FindCachedPrefix(tokens)));
  kv.CacheFullBlocks(&a, tokens, 5);
  const std::vector<int32_t> a_blocks(a.block_ids().begin(), a.block_ids().end());
  kv.Free(&a);
  KvCacheUsage usage = kv.Usage();
  EXPECT_EQ(usage.num_free_blocks, 4);
  EXPECT_EQ(usage.num_cached_blocks, 2);
  EXPECT_EQ(usage.num_evictable_blocks, 2);

  // Same prompt later: both full blocks come back, only the last token is computed.
  BlockTable b;
  CachedPrefix prefix = kv.FindCachedPrefix(tokens);
  EXPECT_THAT(prefix.block_ids, ElementsAre(a_blocks[0], a_blocks[1]));
  ASSERT_TRUE(kv.AllocateSlots(&b, 5, prefix));
  EXPECT_EQ(kv.Usage().num_evictable_blocks, 0);
  kv.CacheFullBlocks(&b, tokens, 5);
  EXPECT_TRUE(kv.CheckInvariants({{&b, 5}}).ok());
  kv.Free(&b);

  // A sequence that needs every block evicts them; the prefix is gone afterwards.
  BlockTable c;
  ASSERT_TRUE(kv.AllocateSlots(&c, 8));
  EXPECT_EQ(kv.Usage().num_cached_blocks, 0);
  kv.Free(&c);
  EXPECT_THAT(kv.FindCachedPrefix(tokens).block_ids, IsEmpty());
}

TEST(KvCacheManagerTest, EvictableHitsDoNotCountAsFreeForTheRest) {
  KvCacheManager kv(2, 3, true);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 4));
  kv.CacheFullBlocks(&a, tokens, 4);
  kv.Free(&a);  // 2 evictable + 1 free
  BlockTable other;
  ASSERT_TRUE(kv.AllocateSlots(&other, 1));  // takes the free one
  // tokens + 2 more need 4 blocks: 2 shared + 2 new, but only the 2 shared ones are free.
  std::vector<int32_t> longer = tokens;
  longer.push_back(6);
  BlockTable b;
  EXPECT_FALSE(kv.AllocateSlots(&b, 7, kv.FindCachedPrefix(longer)));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(kv.Usage().num_evictable_blocks, 2);
  EXPECT_TRUE(kv.CheckInvariants({{&other, 0}}).ok());
}

TEST(KvCacheManagerTest, IdenticalBlocksComputedTwiceKeepOneCacheEntry) {
  KvCacheManager kv(2, 8, true);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  // Both start before either caches anything, as two requests arriving in one step do.
  BlockTable a, b;
  ASSERT_TRUE(kv.AllocateSlots(&a, 5, kv.FindCachedPrefix(tokens)));
  ASSERT_TRUE(kv.AllocateSlots(&b, 5, kv.FindCachedPrefix(tokens)));
  kv.CacheFullBlocks(&a, tokens, 5);
  kv.CacheFullBlocks(&b, tokens, 5);
  EXPECT_EQ(kv.Usage().num_cached_blocks, 2);
  EXPECT_EQ(b.num_cached_blocks(), 2);  // b knows the prefix ids; its copies stay private
  EXPECT_TRUE(kv.CheckInvariants({{&a, 5}, {&b, 5}}).ok());
  // b's later blocks chain onto the shared prefix ids, so a third sequence finds them whole.
  std::vector<int32_t> longer = {1, 2, 3, 4, 5, 6, 7};
  ASSERT_TRUE(kv.AllocateSlots(&b, 7));
  kv.CacheFullBlocks(&b, longer, 6);
  CachedPrefix prefix = kv.FindCachedPrefix(longer);
  EXPECT_THAT(prefix.block_ids, ElementsAre(a.block_ids()[0], a.block_ids()[1], b.block_ids()[2]));
}

TEST(KvCacheManagerTest, NoCachingWhenDisabled) {
  KvCacheManager kv(2, 4, false);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 5, kv.FindCachedPrefix(tokens)));
  kv.CacheFullBlocks(&a, tokens, 5);
  EXPECT_EQ(a.num_cached_blocks(), 0);
  EXPECT_EQ(kv.Usage().num_cached_blocks, 0);
  EXPECT_THAT(kv.FindCachedPrefix(tokens).block_ids, IsEmpty());
  EXPECT_EQ(kv.prefix_cache_stats().queries, 0);
  EXPECT_TRUE(kv.CheckInvariants({{&a, 5}}).ok());
}

TEST(KvCacheManagerTest, CheckInvariantsCatchesSharedBlocksStillBeingWritten) {
  KvCacheManager kv(2, 4, true);
  const std::vector<int32_t> tokens = {1, 2, 3};
  BlockTable a;
  ASSERT_TRUE(kv.AllocateSlots(&a, 3));
  kv.CacheFullBlocks(&a, tokens, 2);
  // Claiming fewer computed tokens than the table made cacheable is inconsistent.
  EXPECT_FALSE(kv.CheckInvariants({{&a, 1}}).ok());
  EXPECT_TRUE(kv.CheckInvariants({{&a, 3}}).ok());
}

}  // namespace
}  // namespace mlkv
