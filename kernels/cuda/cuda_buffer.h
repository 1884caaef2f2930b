// Device memory owned through a DeviceBuffer: freed with cudaFree when dropped.
#ifndef MLKV_KERNELS_CUDA_CUDA_BUFFER_H_
#define MLKV_KERNELS_CUDA_CUDA_BUFFER_H_

#include <cuda_runtime_api.h>

#include "kernels/device_buffer.h"

namespace mlkv {

class CudaBuffer final : public DeviceBuffer {
 public:
  // Takes ownership of `data` (from cudaMalloc; null for an empty buffer).
  CudaBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  // cudaFree waits for work still using the memory. Its error is ignored: at process exit the
  // runtime may already be unloading, and there is nothing left to do about a failed free.
  ~CudaBuffer() override {
    if (data_ != nullptr) static_cast<void>(cudaFree(data_));
  }

  void* data() override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* data_;
  size_t bytes_;
};

}  // namespace mlkv

#endif  // MLKV_KERNELS_CUDA_CUDA_BUFFER_H_
