// What an attention op needs to know about one step's batch and one sharing group's paged cache.
//
// The batch is flat: the new tokens of every scheduled sequence, back to back (a prompt chunk or
// one decode token per sequence). Sequence s owns rows [query_start[s], query_start[s+1]); after
// this step its cache holds context_lens[s] tokens, the last of which are its rows here.
//
// One sharing group's cache, in blocks of block_size tokens (same block ids for every group):
//
//   k_cache, v_cache: [num_blocks][num_kv_heads][block_size x head_dim elements]  (kv dtype)
//
// How a block's block_size x head_dim elements are arranged is the backend's choice (the CPU
// backend stores keys transposed, see kernels/cpu/paged_attention.cc); nothing outside the
// backend reads the pools. Token t of sequence s lives in block block_tables[s][t / block_size],
// slot t % block_size, i.e. at physical slot block * block_size + t % block_size (what
// slot_mapping holds).
#ifndef MLKV_KERNELS_PAGED_KV_H_
#define MLKV_KERNELS_PAGED_KV_H_

#include <cstdint>

#include "common/dtype.h"

namespace mlkv {

// Pointers are the backend's memory (host memory on the CPU backend). Non-owning.
struct StepBatchView {
  int64_t num_tokens = 0;
  const int32_t* positions = nullptr;  // [num_tokens] position of each row in its sequence
  // [num_tokens] physical cache slot each row writes; negative: the row writes nothing (padding,
  // as in a decode batch padded to the size of a captured graph).
  const int64_t* slot_mapping = nullptr;
  int64_t num_seqs = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* context_lens = nullptr;  // [num_seqs]
  const int32_t* block_tables = nullptr;  // [num_seqs][max_blocks_per_seq]
  int64_t max_blocks_per_seq = 0;
};

struct KvCacheView {
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  DType dtype = DType::kF32;  // kF32, kF16 or kBF16
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

// NeoX rotary embedding: rotate-half on the first rotary_dims of each head.
// cos_sin: [max_positions][rotary_dims / 2][2] (cos, sin) of position * base^(-2i/r).
struct RotaryView {
  int64_t rotary_dims = 0;
  int64_t max_positions = 0;
  const float* cos_sin = nullptr;
};

struct AttentionParams {
  int64_t num_heads = 0;  // query heads; head h reads KV head h / (num_heads / num_kv_heads)
  float scale = 1.0f;     // 1 / sqrt(head_dim)
  // The cache holds unrotated keys but this layer attends to rotated ones (the KV layer of a
  // group in `unrotated` sharing mode): rotate each key by its own position as it is read.
  bool rotate_keys_on_read = false;
};

}  // namespace mlkv

#endif  // MLKV_KERNELS_PAGED_KV_H_
