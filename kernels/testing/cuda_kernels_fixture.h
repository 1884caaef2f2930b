// Test helper: the fixture of the CUDA kernel tests (kernels/cuda/cuda_*_test.cc): both backends,
// host vectors moved onto either, and a tolerance check. Every test is skipped without a visible
// CUDA device. For tests only.
#ifndef MLKV_KERNELS_TESTING_CUDA_KERNELS_FIXTURE_H_
#define MLKV_KERNELS_TESTING_CUDA_KERNELS_FIXTURE_H_

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace mlkv::testing {

// Both backends, and host vectors moved onto either. A test fixture so that SetUp can skip.
class CudaKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device visible (cudaGetDeviceCount reports none, or this build "
                      "has no CUDA): the CUDA kernels were NOT run";
    }
    cpu_ = CreateCpuBackend();
    auto cuda = CreateCudaBackend();
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
  }

  template <typename T>
  static std::unique_ptr<DeviceBuffer> Upload(Backend& backend, const std::vector<T>& host) {
    auto buffer = backend.Allocate(host.size() * sizeof(T));
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    backend.CopyToDevice((*buffer)->data(), host.data(), host.size() * sizeof(T));
    return std::move(*buffer);
  }
  template <typename T>
  static std::vector<T> Download(Backend& backend, DeviceBuffer& buffer) {
    std::vector<T> host(buffer.bytes() / sizeof(T));
    backend.CopyToHost(host.data(), buffer.data(), host.size() * sizeof(T));
    return host;
  }

  std::unique_ptr<Backend> cpu_, cuda_;
};

inline void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected,
                       double abs, double rel, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], abs + rel * std::fabs(expected[i]))
        << what << " at element " << i;
  }
}

}  // namespace mlkv::testing

#endif  // MLKV_KERNELS_TESTING_CUDA_KERNELS_FIXTURE_H_
