// One sequence's block table: the blocks holding its tokens, in position order, shared by every
// KV sharing group. Only KvCacheManager changes it; everyone else reads it.
#ifndef MLKV_SCHEDULER_BLOCK_TABLE_H_
#define MLKV_SCHEDULER_BLOCK_TABLE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "scheduler/block_pool.h"

namespace mlkv {

// Token at position p lives in block block_ids()[p / block_size], slot offset p % block_size:
//
//   positions  0 .. bs-1 | bs .. 2bs-1 | ... | (n-1)bs .. (partly filled)
//   block_ids  [   b0    |     b1      | ... |   b(n-1)  ]
//   prefix_ids [   p0    |     p1      | ... ]             one per full block made cacheable
//
// Invariants: append-only until the whole table is freed (positions never move); no block
// appears twice; prefix_ids[i] names the prefix that ends with block i, so prefix_ids.size() <=
// block_ids.size() (only full blocks get one). Not thread-safe.
class BlockTable {
 public:
  BlockTable() = default;
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  absl::Span<const int32_t> block_ids() const { return block_ids_; }
  int32_t num_blocks() const { return static_cast<int32_t>(block_ids_.size()); }
  // Leading full blocks whose prefix has been handed to the prefix cache.
  int32_t num_cached_blocks() const { return static_cast<int32_t>(prefix_ids_.size()); }
  bool empty() const { return block_ids_.empty(); }

 private:
  friend class KvCacheManager;

  std::vector<int32_t> block_ids_;
  std::vector<PrefixId> prefix_ids_;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_BLOCK_TABLE_H_
