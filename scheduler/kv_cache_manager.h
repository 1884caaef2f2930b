// The KV cache manager: grows sequences' block tables as their tokens are computed, finds cached
// prefixes for new sequences, makes newly filled full blocks cacheable, and frees tables.
#ifndef MLKV_SCHEDULER_KV_CACHE_MANAGER_H_
#define MLKV_SCHEDULER_KV_CACHE_MANAGER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "scheduler/block_pool.h"
#include "scheduler/block_table.h"

namespace mlkv {

// A prefix-cache match for a sequence: blocks it can share, covering num_tokens() tokens.
struct CachedPrefix {
  std::vector<int32_t> block_ids;
  int32_t num_tokens = 0;        // block_ids.size() * block_size
  int32_t num_query_tokens = 0;  // tokens the lookup was asked about (for the hit-rate stats)
};

// Blocks by state. used + free == total; cached counts blocks in the prefix index, in use or
// evictable (evictable ones are also counted free).
struct KvCacheUsage {
  int32_t num_blocks = 0;
  int32_t num_used_blocks = 0;
  int32_t num_free_blocks = 0;
  int32_t num_cached_blocks = 0;
  int32_t num_evictable_blocks = 0;
  int64_t num_evictions = 0;
};

// Prefix-cache lookups counted per admitted sequence and per token.
struct PrefixCacheStats {
  int64_t queries = 0;       // sequences looked up on admission (resumptions included)
  int64_t hits = 0;          // ... that shared at least one block
  int64_t query_tokens = 0;  // tokens those sequences had
  int64_t hit_tokens = 0;    // ... of which came from the cache
};

// One live sequence's table and how many of its tokens are computed, for CheckInvariants().
struct LiveTable {
  const BlockTable* table;
  int32_t num_computed_tokens;
};

// The blocks hold every KV sharing group at once (one block id = one slab per group), so the
// manager only knows block_size and num_blocks. Not thread-safe: the engine thread owns it.
class KvCacheManager {
 public:
  // MLKV_CHECKs that both sizes are positive (SchedulerConfig::Validate() says so for users).
  KvCacheManager(int32_t block_size, int32_t num_blocks, bool enable_prefix_caching);
  KvCacheManager(const KvCacheManager&) = delete;
  KvCacheManager& operator=(const KvCacheManager&) = delete;

  int32_t block_size() const { return pool_.block_size(); }
  int32_t num_blocks() const { return pool_.num_blocks(); }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }
  // Blocks that hold `num_tokens` tokens: ceil(num_tokens / block_size).
  int32_t BlocksFor(int64_t num_tokens) const;

  // The longest run of cached full blocks that starts `token_ids`, stopping one token short of
  // the end: a sequence must compute at least its last known token to get logits from it.
  // Empty when prefix caching is off. Reads only: the stats count the lookup when
  // AllocateSlots() starts a table from it.
  CachedPrefix FindCachedPrefix(absl::Span<const int32_t> token_ids) const;

  // Makes `table` cover `num_tokens` tokens (computed plus this step's), first sharing
  // `prefix`'s blocks (only for an empty table, with `prefix` from FindCachedPrefix() just
  // before). Returns false, changing nothing, when the free blocks cannot cover it: the
  // scheduler then preempts someone or waits.
  [[nodiscard]] bool AllocateSlots(BlockTable* table, int32_t num_tokens,
                                   const CachedPrefix& prefix = {});

  // Hands the table's full blocks among its first `num_computed_tokens` tokens to the prefix
  // cache (no-op when caching is off). `token_ids` are the sequence's tokens from position 0.
  void CacheFullBlocks(BlockTable* table, absl::Span<const int32_t> token_ids,
                       int32_t num_computed_tokens);

  // Releases every block of `table` and empties it (finish, abort or preemption).
  void Free(BlockTable* table);

  KvCacheUsage Usage() const;
  const PrefixCacheStats& prefix_cache_stats() const { return prefix_stats_; }
  const BlockPool& pool() const { return pool_; }

  // Checks the pool's invariants with the references `tables` hold, and for each table: no
  // block twice; the full computed blocks have prefix ids when caching is on (none when off);
  // blocks past the computed full blocks (those still written) are held by that table alone.
  absl::Status CheckInvariants(absl::Span<const LiveTable> tables) const;

 private:
  BlockPool pool_;
  bool enable_prefix_caching_;
  PrefixCacheStats prefix_stats_;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_KV_CACHE_MANAGER_H_
