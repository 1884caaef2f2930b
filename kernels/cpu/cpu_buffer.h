// Host memory for the CPU backend: 64-byte aligned, zeroed.
#ifndef MLKV_KERNELS_CPU_CPU_BUFFER_H_
#define MLKV_KERNELS_CPU_CPU_BUFFER_H_

#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/device_buffer.h"

namespace mlkv {

class CpuBuffer final : public DeviceBuffer {
 public:
  static absl::StatusOr<std::unique_ptr<DeviceBuffer>> Create(size_t bytes) {
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* data = rounded == 0 ? nullptr : std::aligned_alloc(kAlignment, rounded);
    if (rounded != 0 && data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " bytes"));
    }
    if (data != nullptr) std::memset(data, 0, rounded);
    return std::unique_ptr<DeviceBuffer>(new CpuBuffer(data, bytes));
  }
  ~CpuBuffer() override { std::free(data_); }

  void* data() override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  static constexpr size_t kAlignment = 64;  // a cache line; enough for any SIMD load
  CpuBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  size_t bytes_;
};

}  // namespace mlkv

#endif  // MLKV_KERNELS_CPU_CPU_BUFFER_H_
