// KvCacheManager: block-table growth, prefix lookups and caching on top of BlockPool.
#include "scheduler/kv_cache_manager.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace mlkv {

KvCacheManager::KvCacheManager(int32_t block_size, int32_t num_blocks, bool enable_prefix_caching)
    : pool_(num_blocks, block_size), enable_prefix_caching_(enable_prefix_caching) {}

int32_t KvCacheManager::BlocksFor(int64_t num_tokens) const {
  return static_cast<int32_t>((num_tokens + block_size() - 1) / block_size());
}

CachedPrefix KvCacheManager::FindCachedPrefix(absl::Span<const int32_t> token_ids) const {
  CachedPrefix prefix;
  prefix.num_query_tokens = static_cast<int32_t>(token_ids.size());
  if (!enable_prefix_caching_ || token_ids.empty()) return prefix;
  const int32_t bs = block_size();
  // Leave the last token to compute, even when the whole sequence sits in cached blocks.
  const size_t max_blocks = (token_ids.size() - 1) / bs;
  PrefixId parent = kRootPrefix;
  for (size_t i = 0; i < max_blocks; ++i) {
    std::optional<int32_t> block = pool_.Lookup(parent, token_ids.subspan(i * bs, bs));
    if (!block) break;
    prefix.block_ids.push_back(*block);
    parent = pool_.prefix_id(*block);
  }
  prefix.num_tokens = static_cast<int32_t>(prefix.block_ids.size()) * bs;
  return prefix;
}

bool KvCacheManager::AllocateSlots(BlockTable* table, int32_t num_tokens,
                                   const CachedPrefix& prefix) {
  MLKV_CHECK(prefix.block_ids.empty() || table->empty(),
             "a cached prefix can only start an empty block table");
  const int32_t num_prefix = static_cast<int32_t>(prefix.block_ids.size());
  const int32_t needed = std::max(0, BlocksFor(num_tokens) - table->num_blocks() - num_prefix);
  // Sharing an evictable block takes it off the free count too.
  int32_t evictable_in_prefix = 0;
  for (int32_t block : prefix.block_ids) evictable_in_prefix += pool_.ref_count(block) == 0;
  if (needed > pool_.num_free_blocks() - evictable_in_prefix) return false;

  if (table->empty() && enable_prefix_caching_ && prefix.num_query_tokens > 0) {
    ++prefix_stats_.queries;
    prefix_stats_.hits += num_prefix > 0;
    prefix_stats_.query_tokens += prefix.num_query_tokens;
    prefix_stats_.hit_tokens += prefix.num_tokens;
  }
  for (int32_t block : prefix.block_ids) {
    pool_.Acquire(block);
    table->block_ids_.push_back(block);
    table->prefix_ids_.push_back(pool_.prefix_id(block));
  }
  const bool allocated = pool_.Allocate(needed, &table->block_ids_);
  MLKV_CHECK(allocated, "{} blocks were counted free but could not be allocated", needed);
  return true;
}

void KvCacheManager::CacheFullBlocks(BlockTable* table, absl::Span<const int32_t> token_ids,
                                     int32_t num_computed_tokens) {
  if (!enable_prefix_caching_) return;
  const int32_t bs = block_size();
  const int32_t num_full = num_computed_tokens / bs;
  MLKV_CHECK(num_full <= table->num_blocks() &&
                 static_cast<int64_t>(num_full) * bs <= static_cast<int64_t>(token_ids.size()),
             "{} computed tokens but {} blocks and {} known tokens", num_computed_tokens,
             table->num_blocks(), token_ids.size());
  for (int32_t i = table->num_cached_blocks(); i < num_full; ++i) {
    const PrefixId parent = i == 0 ? kRootPrefix : table->prefix_ids_[i - 1];
    table->prefix_ids_.push_back(pool_.Cache(table->block_ids_[i], parent,
                                             token_ids.subspan(static_cast<size_t>(i) * bs, bs)));
  }
}

void KvCacheManager::Free(BlockTable* table) {
  pool_.Release(table->block_ids_);
  table->block_ids_.clear();
  table->prefix_ids_.clear();
}

KvCacheUsage KvCacheManager::Usage() const {
  KvCacheUsage usage;
  usage.num_blocks = pool_.num_blocks();
  usage.num_used_blocks = pool_.num_used_blocks();
  usage.num_free_blocks = pool_.num_free_blocks();
  usage.num_cached_blocks = pool_.num_cached_blocks();
  usage.num_evictable_blocks = pool_.num_evictable_blocks();
  usage.num_evictions = pool_.num_evictions();
  return usage;
}

absl::Status KvCacheManager::CheckInvariants(absl::Span<const LiveTable> tables) const {
  std::vector<int32_t> refs(pool_.num_blocks(), 0);
  const int32_t bs = block_size();
  for (size_t t = 0; t < tables.size(); ++t) {
    const BlockTable& table = *tables[t].table;
    const int32_t num_computed = tables[t].num_computed_tokens;
    const int32_t num_full = num_computed / bs;
    auto fail = [&](auto&&... parts) {
      return absl::InternalError(absl::StrCat("block table ", t, ": ", parts...));
    };
    if (table.num_blocks() < BlocksFor(num_computed)) {
      return fail(table.num_blocks(), " blocks cannot hold ", num_computed, " computed tokens");
    }
    const int32_t expected_cached = enable_prefix_caching_ ? num_full : 0;
    if (table.num_cached_blocks() != expected_cached) {
      return fail(table.num_cached_blocks(), " blocks made cacheable, expected ", expected_cached);
    }
    absl::flat_hash_set<int32_t> distinct;
    for (int32_t i = 0; i < table.num_blocks(); ++i) {
      const int32_t block = table.block_ids()[i];
      if (block < 0 || block >= pool_.num_blocks()) return fail("bad block id ", block);
      if (!distinct.insert(block).second) return fail("holds block ", block, " twice");
      ++refs[block];
      if (i >= num_full && (pool_.ref_count(block) != 1 || pool_.is_cached(block))) {
        return fail("block ", block, " at index ", i, " is still being written but has ",
                    "ref_count ", pool_.ref_count(block),
                    (pool_.is_cached(block) ? " and is cached" : ""));
      }
    }
  }
  return pool_.CheckInvariants(refs);
}

}  // namespace mlkv
