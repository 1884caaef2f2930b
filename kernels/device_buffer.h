// Memory owned by a Backend (host memory for the CPU backend, device memory for CUDA).
#ifndef MLKV_KERNELS_DEVICE_BUFFER_H_
#define MLKV_KERNELS_DEVICE_BUFFER_H_

#include <cstddef>

namespace mlkv {

class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Only the owning backend's ops may dereference this pointer.
  virtual void* data() = 0;
  virtual size_t bytes() const = 0;

  template <typename T>
  T* as() {
    return static_cast<T*>(data());
  }

 protected:
  DeviceBuffer() = default;
};

}  // namespace mlkv

#endif  // MLKV_KERNELS_DEVICE_BUFFER_H_
