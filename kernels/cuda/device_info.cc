// CUDA device queries; see device_info.h.
#include "kernels/cuda/device_info.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace mlkv {
namespace {

absl::Status CudaError(cudaError_t error, const char* what) {
  static_cast<void>(cudaGetLastError());  // clear a non-sticky error so later calls start clean
  return absl::UnavailableError(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

// Makes `device` current for the scope and restores the caller's device after.
class ScopedDevice {
 public:
  static absl::StatusOr<ScopedDevice> Enter(int device) {
    int previous = 0;
    if (cudaError_t e = cudaGetDevice(&previous); e != cudaSuccess)
      return CudaError(e, "cudaGetDevice");
    if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
      return CudaError(e, absl::StrCat("cudaSetDevice(", device, ")").c_str());
    }
    return ScopedDevice(previous);
  }
  ScopedDevice(ScopedDevice&& other) noexcept : previous_(other.previous_) { other.previous_ = -1; }
  ScopedDevice& operator=(ScopedDevice&&) = delete;
  ~ScopedDevice() {
    if (previous_ >= 0) static_cast<void>(cudaSetDevice(previous_));
  }

 private:
  explicit ScopedDevice(int previous) : previous_(previous) {}
  int previous_;  // -1 once moved from
};

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return 0;
  }
  return count;
}

absl::StatusOr<DeviceMemory> QueryDeviceMemory(int device) {
  if (device < 0 || device >= CudaDeviceCount()) {
    return absl::UnavailableError(
        absl::StrCat("no CUDA device ", device, " (", CudaDeviceCount(), " visible)"));
  }
  ASSIGN_OR_RETURN(ScopedDevice scope, ScopedDevice::Enter(device));
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes); e != cudaSuccess) {
    return CudaError(e, "cudaMemGetInfo");
  }
  cudaDeviceProp props{};
  if (cudaError_t e = cudaGetDeviceProperties(&props, device); e != cudaSuccess) {
    return CudaError(e, "cudaGetDeviceProperties");
  }
  DeviceMemory memory;
  memory.free_bytes = static_cast<int64_t>(free_bytes);
  memory.total_bytes = static_cast<int64_t>(total_bytes);
  memory.name = props.name;
  return memory;
}

absl::StatusOr<double> MeasureCopyBandwidth(int device, size_t bytes, int repeats) {
  if (device < 0 || device >= CudaDeviceCount()) {
    return absl::UnavailableError(absl::StrCat("no CUDA device ", device));
  }
  ASSIGN_OR_RETURN(ScopedDevice scope, ScopedDevice::Enter(device));
  void* src = nullptr;
  void* dst = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  auto release = [&] {
    if (src != nullptr) static_cast<void>(cudaFree(src));
    if (dst != nullptr) static_cast<void>(cudaFree(dst));
    if (start != nullptr) static_cast<void>(cudaEventDestroy(start));
    if (stop != nullptr) static_cast<void>(cudaEventDestroy(stop));
  };
  cudaError_t e = cudaMalloc(&src, bytes);
  if (e == cudaSuccess) e = cudaMalloc(&dst, bytes);
  if (e == cudaSuccess) e = cudaEventCreate(&start);
  if (e == cudaSuccess) e = cudaEventCreate(&stop);
  if (e == cudaSuccess) e = cudaMemset(src, 0, bytes);
  if (e == cudaSuccess) e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  float best_ms = 0.0f;
  for (int r = 0; r < repeats && e == cudaSuccess; ++r) {
    e = cudaEventRecord(start);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
    if (e == cudaSuccess) e = cudaEventRecord(stop);
    if (e == cudaSuccess) e = cudaEventSynchronize(stop);
    float ms = 0.0f;
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, start, stop);
    if (e == cudaSuccess && (best_ms == 0.0f || ms < best_ms)) best_ms = ms;
  }
  release();
  if (e != cudaSuccess) return CudaError(e, "copy bandwidth");
  if (best_ms <= 0.0f) return absl::InternalError("copy bandwidth: no timing");
  return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3);  // read + write
}

}  // namespace mlkv
