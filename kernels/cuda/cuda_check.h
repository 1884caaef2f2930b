// Fatal checks of CUDA and cuBLAS return codes. The Backend ops return nothing, and an error
// inside one (an illegal address, a launch failure) leaves the CUDA context unusable, so such an
// error is a broken invariant: it aborts with the call and CUDA's message. Errors that a caller
// can act on (out of memory, no device) are returned as absl::Status instead, by the callers.
// Usable from .cu files: the logging lives in cuda_check.cc, out of nvcc's way.
#ifndef MLKV_KERNELS_CUDA_CUDA_CHECK_H_
#define MLKV_KERNELS_CUDA_CUDA_CHECK_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace mlkv::cuda {

// Logs "file:line: expr: message" and aborts.
[[noreturn]] void CudaFatal(const char* file, int line, const char* expr, const char* message);

}  // namespace mlkv::cuda

#define MLKV_CUDA_CHECK(expr)                                                                   \
  do {                                                                                          \
    const cudaError_t mlkv_cuda_error_ = (expr);                                                \
    if (mlkv_cuda_error_ != cudaSuccess) {                                                      \
      ::mlkv::cuda::CudaFatal(__FILE__, __LINE__, #expr, cudaGetErrorString(mlkv_cuda_error_)); \
    }                                                                                           \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (faults inside the kernel
// surface at the next synchronising call).
#define MLKV_CUDA_CHECK_LAUNCH() MLKV_CUDA_CHECK(cudaGetLastError())

#define MLKV_CUBLAS_CHECK(expr)                                            \
  do {                                                                     \
    const cublasStatus_t mlkv_cublas_status_ = (expr);                     \
    if (mlkv_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                    \
      ::mlkv::cuda::CudaFatal(__FILE__, __LINE__, #expr,                   \
                              cublasGetStatusString(mlkv_cublas_status_)); \
    }                                                                      \
  } while (0)

#endif  // MLKV_KERNELS_CUDA_CUDA_CHECK_H_
