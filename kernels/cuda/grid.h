// Launch sizes for the simple elementwise and per-row kernels.
#ifndef MLKV_KERNELS_CUDA_GRID_H_
#define MLKV_KERNELS_CUDA_GRID_H_

#include <algorithm>
#include <cstdint>

namespace mlkv::cuda {

inline constexpr int kElementwiseThreads = 256;

// Blocks for a grid-stride loop over `count` elements: enough to fill any current GPU several
// times over, never more than there is work for.
inline unsigned ElementwiseBlocks(int64_t count) {
  constexpr int64_t kMaxBlocks = 4096;
  const int64_t blocks = (count + kElementwiseThreads - 1) / kElementwiseThreads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxBlocks));
}

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_GRID_H_
