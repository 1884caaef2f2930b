// The CUDA backend's API in a build without the CUDA toolkit: no devices, and a clear error from
// anything that would need one.
#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace mlkv {
namespace {
absl::Status NoCuda() {
  return absl::UnavailableError(
      "this build has no CUDA backend (configure with -DMLKV_CUDA=ON on a machine with the CUDA "
      "toolkit)");
}
}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions&) {
  return NoCuda();
}
int CudaDeviceCount() { return 0; }
absl::StatusOr<DeviceMemory> QueryDeviceMemory(int) { return NoCuda(); }
absl::StatusOr<double> MeasureCopyBandwidth(int, size_t, int) { return NoCuda(); }

}  // namespace mlkv
