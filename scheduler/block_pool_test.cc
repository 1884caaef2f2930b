// BlockPool: allocation and freeing, reference counts, the exact-content prefix index, and the
// least-recently-used eviction order of cached blocks nobody holds.
#include "scheduler/block_pool.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

// The references a test's owners hold, to hand to CheckInvariants().
std::vector<int32_t> Refs(int32_t num_blocks, const std::vector<std::vector<int32_t>>& owners) {
  std::vector<int32_t> refs(num_blocks, 0);
  for (const auto& blocks : owners) {
    for (int32_t b : blocks) ++refs[b];
  }
  return refs;
}

TEST(BlockPoolTest, AllocatesAndFrees) {
  BlockPool pool(4, 2);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(3, &a));
  EXPECT_THAT(a, ElementsAre(0, 1, 2));
  EXPECT_EQ(pool.num_free_blocks(), 1);
  EXPECT_EQ(pool.num_used_blocks(), 3);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {a})).ok());

  std::vector<int32_t> b;
  EXPECT_FALSE(pool.Allocate(2, &b));  // only one is free: takes nothing
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.num_free_blocks(), 1);

  pool.Release(a);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {})).ok());
  ASSERT_TRUE(pool.Allocate(4, &b));
  EXPECT_EQ(pool.num_free_blocks(), 0);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {b})).ok());
}

TEST(BlockPoolTest, CheckInvariantsCatchesLeaksAndWrongCounts) {
  BlockPool pool(3, 2);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(2, &a));
  absl::Status leaked = pool.CheckInvariants(Refs(3, {{a[0]}}));  // owner lost block a[1]
  EXPECT_FALSE(leaked.ok());
  EXPECT_THAT(leaked.message(), HasSubstr("leaked or double-freed"));
  EXPECT_FALSE(pool.CheckInvariants(Refs(3, {a, a})).ok());
  EXPECT_FALSE(pool.CheckInvariants({0, 0}).ok());  // wrong size
}

TEST(BlockPoolTest, CachesFullBlocksByExactContentAndParent) {
  BlockPool pool(4, 2);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(2, &a));
  const PrefixId p0 = pool.Cache(a[0], kRootPrefix, std::vector<int32_t>{1, 2});
  const PrefixId p1 = pool.Cache(a[1], p0, std::vector<int32_t>{3, 4});
  EXPECT_NE(p0, kRootPrefix);
  EXPECT_NE(p0, p1);
  EXPECT_EQ(pool.num_cached_blocks(), 2);

  EXPECT_THAT(pool.Lookup(kRootPrefix, std::vector<int32_t>{1, 2}), Optional(a[0]));
  EXPECT_THAT(pool.Lookup(p0, std::vector<int32_t>{3, 4}), Optional(a[1]));
  // Same tokens after another prefix, or other tokens after the same prefix: no match.
  EXPECT_EQ(pool.Lookup(kRootPrefix, std::vector<int32_t>{3, 4}), std::nullopt);
  EXPECT_EQ(pool.Lookup(p0, std::vector<int32_t>{3, 5}), std::nullopt);
  EXPECT_EQ(pool.Lookup(p1, std::vector<int32_t>{1, 2}), std::nullopt);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {a})).ok());
}

TEST(BlockPoolTest, DuplicateContentStaysUncachedAndReportsTheExistingPrefix) {
  BlockPool pool(4, 2);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.Allocate(1, &a));
  ASSERT_TRUE(pool.Allocate(1, &b));
  const PrefixId first = pool.Cache(a[0], kRootPrefix, std::vector<int32_t>{7, 7});
  EXPECT_EQ(pool.Cache(b[0], kRootPrefix, std::vector<int32_t>{7, 7}), first);
  EXPECT_TRUE(pool.is_cached(a[0]));
  EXPECT_FALSE(pool.is_cached(b[0]));
  pool.Release(b);  // an uncached block goes straight back to the free stack
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {a})).ok());
}

TEST(BlockPoolTest, SharedCachedBlockCountsReferences) {
  BlockPool pool(2, 2);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(1, &a));
  pool.Cache(a[0], kRootPrefix, std::vector<int32_t>{5, 6});
  pool.Acquire(a[0]);
  EXPECT_EQ(pool.ref_count(a[0]), 2);
  EXPECT_TRUE(pool.CheckInvariants(Refs(2, {a, a})).ok());
  pool.Release(a);
  EXPECT_EQ(pool.ref_count(a[0]), 1);
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  pool.Release(a);
  EXPECT_EQ(pool.ref_count(a[0]), 0);
  EXPECT_EQ(pool.num_evictable_blocks(), 1);  // free, but still found
  EXPECT_THAT(pool.Lookup(kRootPrefix, std::vector<int32_t>{5, 6}), Optional(a[0]));
  // Reusing a free cached block takes it off the eviction list.
  pool.Acquire(a[0]);
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  EXPECT_EQ(pool.num_free_blocks(), 1);
  EXPECT_TRUE(pool.CheckInvariants(Refs(2, {a})).ok());
}

TEST(BlockPoolTest, TakesUncachedBlocksBeforeEvicting) {
  BlockPool pool(3, 1);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(1, &a));
  pool.Cache(a[0], kRootPrefix, std::vector<int32_t>{9});
  pool.Release(a);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.Allocate(2, &b));
  EXPECT_THAT(b, ElementsAre(1, 2));
  EXPECT_TRUE(pool.is_cached(a[0]));
  EXPECT_EQ(pool.num_evictions(), 0);
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.Allocate(1, &c));  // now the cached one goes
  EXPECT_THAT(c, ElementsAre(a[0]));
  EXPECT_FALSE(pool.is_cached(a[0]));
  EXPECT_EQ(pool.num_evictions(), 1);
  EXPECT_EQ(pool.Lookup(kRootPrefix, std::vector<int32_t>{9}), std::nullopt);
  EXPECT_TRUE(pool.CheckInvariants(Refs(3, {b, c})).ok());
}

TEST(BlockPoolTest, EvictsLeastRecentlyUsedFirst) {
  BlockPool pool(4, 1);
  std::vector<int32_t> blocks;
  ASSERT_TRUE(pool.Allocate(4, &blocks));
  for (int32_t b : blocks) pool.Cache(b, kRootPrefix, std::vector<int32_t>{100 + b});
  // Freed one by one: 2 first, then 0, 3, 1.
  for (int32_t b : {2, 0, 3, 1}) pool.Release(std::vector<int32_t>{b});
  // Block 0 is used again and freed: it becomes the most recently used.
  pool.Acquire(0);
  pool.Release(std::vector<int32_t>{0});
  std::vector<int32_t> order;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool.Allocate(1, &order));
  EXPECT_THAT(order, ElementsAre(2, 3, 1, 0));
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  EXPECT_TRUE(pool.CheckInvariants(Refs(4, {order})).ok());
}

TEST(BlockPoolTest, ReleasingATableEvictsItsLastBlockFirst) {
  BlockPool pool(3, 1);
  std::vector<int32_t> table;
  ASSERT_TRUE(pool.Allocate(3, &table));
  PrefixId parent = kRootPrefix;
  for (int32_t b : table) parent = pool.Cache(b, parent, std::vector<int32_t>{b});
  pool.Release(table);
  std::vector<int32_t> order;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.Allocate(1, &order));
  EXPECT_THAT(order, ElementsAre(2, 1, 0));  // the root block survives longest
}

}  // namespace
}  // namespace mlkv
