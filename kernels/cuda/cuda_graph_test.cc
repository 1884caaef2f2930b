// Graph capture on the CUDA backend (Backend::BeginCapture, EndCapture, Replay): captured ops run
// only when replayed, on what their buffers hold then, and misuse is an error status. Skipped
// without a visible CUDA device.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/testing/cuda_kernels_fixture.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using testing::CudaKernelsTest;
using testing::ExpectNear;
using testing::NarrowBits;
using testing::RandomVector;
using testing::RoundTo;

// A Linear with bf16 weights (which narrows its input into the backend's scratch) and the
// exact GELU, then a float32 Linear that adds onto a residual, captured once and replayed on new
// inputs and residuals copied into the same buffers: each replay gives the eager CPU results of
// its inputs. The first Linear's error (LinearMatchesCpu's tolerance) passes through GELU (slope
// at most 1.13) and the second's n unit weights, adding up like sqrt(n). Between the replays an
// eager Linear grows the scratch: the graph's old buffer must stay valid.
TEST_F(CudaKernelsTest, CapturedOpsReplayOnNewInputs) {
  std::mt19937 rng(12);
  const int64_t rows = 5, k = 96, n = 40;
  const std::vector<uint16_t> w = NarrowBits(RandomVector(n * k, rng), DType::kBF16);
  const std::vector<float> b = RandomVector(n, rng), w2 = RandomVector(n * n, rng);
  auto d_w = Upload(*cuda_, w), d_b = Upload(*cuda_, b), d_w2 = Upload(*cuda_, w2);
  auto d_x = Upload(*cuda_, std::vector<float>(rows * k)),
       d_mid = Upload(*cuda_, std::vector<float>(rows * n));
  auto d_out = Upload(*cuda_, std::vector<float>(rows * n));
  const auto run_ops = [&](Backend& backend, const WeightView& weight, const float* bias,
                           const float* weight2, const float* x, float* mid, float* out) {
    backend.Linear(x, rows, k, weight, bias, n, LinearEpilogue::kGeluExact, mid);
    backend.Linear(mid, rows, n, weight2, bias, n, LinearEpilogue::kAccumulate, out);
  };
  const auto run_on_cuda = [&] {
    run_ops(*cuda_, WeightView(d_w->data(), DType::kBF16), d_b->as<float>(), d_w2->as<float>(),
            d_x->as<float>(), d_mid->as<float>(), d_out->as<float>());
  };
  // Copies a new input and residual in and returns the residual and what the ops make of it on
  // the CPU, whose Linear takes the input rounded to bf16 as CUDA's does.
  struct Case {
    std::vector<float> residual, expected;
  };
  const auto new_inputs = [&] {
    std::vector<float> x = RandomVector(rows * k, rng);
    Case c{RandomVector(rows * n, rng), {}};
    cuda_->CopyToDevice(d_x->data(), x.data(), x.size() * sizeof(float));
    cuda_->CopyToDevice(d_out->data(), c.residual.data(), c.residual.size() * sizeof(float));
    for (float& v : x) v = RoundTo(v, DType::kBF16);
    std::vector<float> mid(rows * n);
    c.expected = c.residual;
    run_ops(*cpu_, WeightView(w.data(), DType::kBF16), b.data(), w2.data(), x.data(), mid.data(),
            c.expected.data());
    return c;
  };
  const double tolerance = (3e-6 * k + 1e-4) * 1.13 * std::sqrt(double(n)) + 3e-6 * n;

  // Eagerly first, which grows the scratch the narrowed input needs.
  Case c = new_inputs();
  run_on_cuda();
  ExpectNear(Download<float>(*cuda_, *d_out), c.expected, tolerance, 0, "eager");

  c = new_inputs();
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  run_on_cuda();
  auto graph = cuda_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(Download<float>(*cuda_, *d_out), c.residual) << "captured ops ran";

  for (int replay = 0; replay < 2; ++replay) {
    c = new_inputs();
    cuda_->Replay(**graph);
    ExpectNear(Download<float>(*cuda_, *d_out), c.expected, tolerance, 0,
               absl::StrCat("replay ", replay));
    // An eager Linear whose narrowed input (1.5 MiB, then 3 MiB) outgrows the scratch each time,
    // which retires the buffer the graph uses.
    const int64_t big_rows = (replay + 1) * 8192;
    auto big_in = Upload(*cuda_, RandomVector(big_rows * k, rng));
    auto big_out = Upload(*cuda_, std::vector<float>(big_rows * n));
    cuda_->Linear(big_in->as<float>(), big_rows, k, WeightView(d_w->data(), DType::kBF16), nullptr,
                  n, LinearEpilogue::kStore, big_out->as<float>());
    cuda_->Synchronize();
  }
}

// Misuse of capture is a status, and leaves the backend working eagerly.
TEST_F(CudaKernelsTest, CaptureOutOfOrderIsAnErrorStatus) {
  auto d_x = Upload(*cuda_, std::vector<float>{1.0f, 2.0f});
  auto d_y = Upload(*cuda_, std::vector<float>{10.0f, 20.0f});
  auto d_one = Upload(*cuda_, std::vector<float>{1.0f});
  const auto add_y_to_x = [&] {
    cuda_->Linear(d_y->as<float>(), 2, 1, d_one->as<float>(), nullptr, 1,
                  LinearEpilogue::kAccumulate, d_x->as<float>());
  };
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  EXPECT_EQ(cuda_->BeginCapture().code(), absl::StatusCode::kFailedPrecondition);
  add_y_to_x();
  ASSERT_TRUE(cuda_->EndCapture().ok());
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  add_y_to_x();  // eagerly: once, the graph never replayed
  EXPECT_EQ(Download<float>(*cuda_, *d_x), (std::vector<float>{11.0f, 22.0f}));
}

}  // namespace
}  // namespace mlkv
