// What the CPU backend promises beyond its kernels' arithmetic (cpu_kernels_test.cc): padding
// rows of a cache write write nothing, and it has no graphs, so callers of graph capture fall
// back to running their ops eagerly.
#include "kernels/cpu/cpu_backend.h"

#include <vector>

#include "gtest/gtest.h"
#include "kernels/testing/negative_slots.h"

namespace mlkv {
namespace {

TEST(CpuBackendTest, WriteKvCacheSkipsRowsWithNegativeSlots) {
  auto backend = CreateCpuBackend();
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    testing::ExpectNegativeSlotsWriteNothing(*backend, dtype);
  }
}

TEST(CpuBackendTest, GraphCaptureIsUnimplementedAndOpsRunEagerly) {
  auto backend = CreateCpuBackend();
  EXPECT_EQ(backend->BeginCapture().code(), absl::StatusCode::kUnimplemented);
  std::vector<float> x = {1.0f, 2.0f};
  const std::vector<float> y = {10.0f, 20.0f};
  const float one = 1.0f;  // x += y * 1
  backend->Linear(y.data(), 2, 1, &one, nullptr, 1, LinearEpilogue::kAccumulate, x.data());
  EXPECT_EQ(x, (std::vector<float>{11.0f, 22.0f}));
  EXPECT_EQ(backend->EndCapture().status().code(), absl::StatusCode::kUnimplemented);
}

// A programming error, not a status: no graph can have come from this backend.
TEST(CpuBackendDeathTest, ReplayAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // OpenMP may have started threads
  class ForeignGraph final : public BackendGraph {};
  auto backend = CreateCpuBackend();
  EXPECT_DEATH(backend->Replay(ForeignGraph()), "");
}

}  // namespace
}  // namespace mlkv
