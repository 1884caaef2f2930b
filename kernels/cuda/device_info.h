// What the CUDA devices are and have free: the device count that picks the default backend, the
// memory query behind the KV budget, and the copy bandwidth that attention benchmarks compare
// against. No CUDA includes; in a build without CUDA every device count is 0.
#ifndef MLKV_KERNELS_CUDA_DEVICE_INFO_H_
#define MLKV_KERNELS_CUDA_DEVICE_INFO_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace mlkv {

// Devices this process can use: 0 when the build has no CUDA, there is no driver, or no GPU.
int CudaDeviceCount();

struct DeviceMemory {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
  std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
};

// Free and total memory of `device` now (cudaMemGetInfo). Free memory already excludes what
// this and other processes hold, weights included once they are loaded.
absl::StatusOr<DeviceMemory> QueryDeviceMemory(int device);

// Device-to-device cudaMemcpy bandwidth in bytes/s (read + write counted, as in bandwidthTest)
// over `bytes`-sized buffers, best of `repeats`: the ceiling a memory-bound kernel is quoted
// against.
absl::StatusOr<double> MeasureCopyBandwidth(int device, size_t bytes, int repeats);

}  // namespace mlkv

#endif  // MLKV_KERNELS_CUDA_DEVICE_INFO_H_
