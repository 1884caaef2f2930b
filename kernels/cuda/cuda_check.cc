// The fatal path of cuda_check.h.
#include "kernels/cuda/cuda_check.h"

#include <cstdlib>

#include "spdlog/spdlog.h"

namespace mlkv::cuda {

void CudaFatal(const char* file, int line, const char* expr, const char* message) {
  spdlog::critical("{}:{}: CUDA call failed: {}: {}", file, line, expr, message);
  std::abort();
}

}  // namespace mlkv::cuda
