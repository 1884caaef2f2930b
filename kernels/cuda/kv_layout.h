// The CUDA backend's layout of one sharing group's paged KV cache, shared by the cache write and
// attention kernels:
//
//   k_cache, v_cache: [num_blocks][num_kv_heads][block_size][head_dim]
//
// Keys and values both as rows: the tokens of one (block, KV head) are block_size x head_dim
// contiguous elements, so a thread block reading a run of tokens issues contiguous 16-byte loads
// (unlike the CPU backend, which transposes keys for its SIMD loops).
#ifndef MLKV_KERNELS_CUDA_KV_LAYOUT_H_
#define MLKV_KERNELS_CUDA_KV_LAYOUT_H_

#include <cstdint>

namespace mlkv::cuda {

// Element offset of (block, kv_head, slot, dim 0) in either pool.
__host__ __device__ inline int64_t KvRowOffset(int64_t block, int64_t kv_head, int64_t slot,
                                               int64_t num_kv_heads, int64_t block_size,
                                               int64_t head_dim) {
  return ((block * num_kv_heads + kv_head) * block_size + slot) * head_dim;
}

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_KV_LAYOUT_H_
