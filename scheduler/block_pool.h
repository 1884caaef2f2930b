// The fixed set of KV cache blocks: reference counts, the free list, and the prefix cache's index
// of full blocks by exact content, with least-recently-used eviction of cached blocks nobody holds.
#ifndef MLKV_SCHEDULER_BLOCK_POOL_H_
#define MLKV_SCHEDULER_BLOCK_POOL_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace mlkv {

// Names one token prefix exactly. kRootPrefix is the empty prefix; every other id is handed out by
// BlockPool::Cache() to the block that ends the prefix, and ids are never reused, so by induction
// an id stands for exactly one token sequence for the pool's lifetime.
using PrefixId = uint64_t;
inline constexpr PrefixId kRootPrefix = 0;

// A block is one of three kinds at any time:
//
//   in use      ref_count > 0; cached or not
//   evictable   ref_count == 0, cached: on the LRU list, still found by Lookup()
//   free        ref_count == 0, not cached: on the free stack
//
//   Allocate() takes free blocks first and only then evicts the least recently used evictable
//   block, so cached content survives as long as anything else is available.
//
// The prefix index maps (parent PrefixId, the block's block_size token ids) to the block. Keys
// compare the full token ids, and parents are exact ids rather than hashes, so a hash collision
// (absl::Hash, in-process only) costs a probe, never a wrong block. Content is unique in the
// index: Cache() of content already there leaves the second block uncached.
//
// Invariants (CheckInvariants() verifies them all; the cheap ones are checked on every call):
//   - every block is in exactly one of the three kinds above; counts add up to num_blocks;
//   - a block with ref_count > 1 is cached (only the prefix cache shares blocks);
//   - index entries and cached blocks correspond one to one, each key holding its block's tokens.
//
// Not thread-safe: one owner (the engine thread, through KvCacheManager) calls it.
class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  // Blocks Allocate() can hand out now: free plus evictable.
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_.size()) + num_evictable_; }
  int32_t num_used_blocks() const { return num_blocks() - num_free_blocks(); }
  int32_t num_cached_blocks() const { return static_cast<int32_t>(index_.size()); }
  int32_t num_evictable_blocks() const { return num_evictable_; }
  int64_t num_evictions() const { return num_evictions_; }

  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }
  bool is_cached(int32_t block) const { return blocks_[block].id != kRootPrefix; }
  // The prefix the cached `block` ends; MLKV_CHECKs that it is cached.
  PrefixId prefix_id(int32_t block) const;

  // Appends `n` blocks, each with ref_count 1, to `out`. Returns false and takes nothing when
  // fewer than `n` are free; the caller decides what to give up.
  [[nodiscard]] bool Allocate(int32_t n, std::vector<int32_t>* out);

  // The cached block holding exactly `tokens` (block_size of them) right after `parent`.
  std::optional<int32_t> Lookup(PrefixId parent, absl::Span<const int32_t> tokens) const;

  // Adds a reference to a cached block that Lookup() found, taking it off the LRU list at 0.
  void Acquire(int32_t block);

  // Drops one reference to each of `blocks` (one sequence's table), last block first: a deeper
  // block of a prefix is useless without its parents, so it should be evicted before them.
  void Release(absl::Span<const int32_t> blocks);

  // Records that the held, full `block` holds `tokens` after `parent`, and returns the PrefixId
  // of the prefix ending there: a new id given to `block`, or, when that content is already
  // cached in another block, that block's id (then `block` stays uncached).
  PrefixId Cache(int32_t block, PrefixId parent, absl::Span<const int32_t> tokens);

  // Checks every invariant above and that each block's ref_count equals
  // expected_ref_counts[block] (the references its owners hold). Internal error on the first
  // violation, naming it.
  absl::Status CheckInvariants(absl::Span<const int32_t> expected_ref_counts) const;

 private:
  static constexpr int32_t kNone = -1;

  struct Block {
    int32_t ref_count = 0;
    PrefixId id = kRootPrefix;      // kRootPrefix: not cached
    PrefixId parent = kRootPrefix;  // meaningful while cached
    int32_t lru_prev = kNone;       // LRU links, meaningful while evictable
    int32_t lru_next = kNone;
  };

  // An index key. Stored keys point their tokens into tokens_, which never moves once sized;
  // lookups point them at the caller's tokens.
  struct ContentKey {
    PrefixId parent;
    absl::Span<const int32_t> tokens;

    friend bool operator==(const ContentKey& a, const ContentKey& b) {
      return a.parent == b.parent && a.tokens == b.tokens;
    }
    template <typename H>
    friend H AbslHashValue(H h, const ContentKey& key) {
      return H::combine(std::move(h), key.parent, key.tokens);
    }
  };

  absl::Span<const int32_t> StoredTokens(int32_t block) const;
  void LruPushBack(int32_t block);
  void LruRemove(int32_t block);
  int32_t EvictLeastRecentlyUsed();

  int32_t block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // uncached, ref_count 0; popped from the back
  int32_t lru_head_ = kNone;   // least recently used evictable block
  int32_t lru_tail_ = kNone;   // most recently used
  int32_t num_evictable_ = 0;
  int64_t num_evictions_ = 0;
  PrefixId next_id_ = kRootPrefix + 1;
  // [num_blocks * block_size] token ids of cached blocks. Sized, like index_'s capacity, on the
  // first Cache(), so a pool without prefix caching costs nothing; with it, host memory is about
  // 4 x block_size + 80 bytes per block (~9 bytes per token at block_size 16), against at least
  // 256 bytes per token of device KV (MLKV-1, fp16).
  std::vector<int32_t> tokens_;
  absl::flat_hash_map<ContentKey, int32_t> index_;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_BLOCK_POOL_H_
