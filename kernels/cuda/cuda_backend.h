// The Backend on an NVIDIA GPU: device memory, one CUDA stream, cuBLAS for the projections and
// kernels of its own for the other ops. This header has no CUDA includes, so the engine and the
// tools can name it in any build; without the toolkit CreateCudaBackend reports UNAVAILABLE.
#ifndef MLKV_KERNELS_CUDA_CUDA_BACKEND_H_
#define MLKV_KERNELS_CUDA_CUDA_BACKEND_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "kernels/cuda/attention_plan.h"

namespace mlkv {

struct CudaBackendOptions {
  int device = 0;
  // Lets cuBLAS run float32 GEMMs on TF32 tensor cores (10-bit mantissa products, fp32 sums):
  // several times faster, about 1e-3 relative error. Off by default, so results match the CPU.
  bool allow_tf32 = false;
  // > 0: split every attention row's context into chunks of this many tokens (rounded up to the
  // kernel's tile) and merge them, whatever the planner would choose. For tests and benchmarks.
  int64_t attention_split_tokens = 0;
  // kTensorCore: f16/bf16 caches of the head dims the tensor-core kernel serves take it; other
  // shapes keep the SIMT kernel (attention_plan.h). SIMT by default (docs/testing.md, "GPU").
  cuda::AttentionKernel attention_kernel = cuda::AttentionKernel::kSimt;
};

// Fails (UNAVAILABLE) when the build has no CUDA, no device is visible or the device cannot be
// initialised; the message says which.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options = {});

}  // namespace mlkv

#endif  // MLKV_KERNELS_CUDA_CUDA_BACKEND_H_
