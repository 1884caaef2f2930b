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

// A Linear with bf16 weights (which narrows its input into the backend's scratch), an Add and a
// GELU, captured once and replayed on new inputs copied into the same buffers: each replay gives
// the eager CPU results of its inputs (within LinearMatchesCpu's and GeluAndAddMatchCpu's
// tolerances). Between the replays an eager Linear grows the scratch: the graph's old buffer must
// stay valid.
TEST_F(CudaKernelsTest, CapturedOpsReplayOnNewInputs) {
  std::mt19937 rng(12);
  const int64_t rows = 5, k = 96, n = 40;
  const std::vector<uint16_t> w = NarrowBits(RandomVector(n * k, rng), DType::kBF16);
  const std::vector<float> b = RandomVector(n, rng);
  auto d_w = Upload(*cuda_, w), d_b = Upload(*cuda_, b);
  auto d_x = Upload(*cuda_, std::vector<float>(rows * k)),
       d_y = Upload(*cuda_, std::vector<float>(rows * n));
  auto d_out = Upload(*cuda_, std::vector<float>(rows * n));
  const auto run_ops = [&](Backend& backend, const WeightView& weight, const float* bias,
                           const float* x, const float* y, float* out) {
    backend.Linear(x, rows, k, weight, bias, n, out);
    backend.Add(out, y, rows * n);
    backend.Gelu(out, rows * n, GeluKind::kExact);
  };
  const auto run_on_cuda = [&] {
    run_ops(*cuda_, WeightView(d_w->data(), DType::kBF16), d_b->as<float>(), d_x->as<float>(),
            d_y->as<float>(), d_out->as<float>());
  };
  // Copies new inputs in and returns what the ops give on the CPU, whose Linear takes the input
  // rounded to bf16 as CUDA's does.
  const auto new_inputs = [&] {
    std::vector<float> x = RandomVector(rows * k, rng), y = RandomVector(rows * n, rng);
    cuda_->CopyToDevice(d_x->data(), x.data(), x.size() * sizeof(float));
    cuda_->CopyToDevice(d_y->data(), y.data(), y.size() * sizeof(float));
    for (float& v : x) v = RoundTo(v, DType::kBF16);
    std::vector<float> out(rows * n);
    run_ops(*cpu_, WeightView(w.data(), DType::kBF16), b.data(), x.data(), y.data(), out.data());
    return out;
  };
  const std::vector<float> poison(rows * n, std::nanf(""));
  const auto poison_out = [&] {
    cuda_->CopyToDevice(d_out->data(), poison.data(), poison.size() * sizeof(float));
  };
  const double tolerance = 3e-6 * k + 1e-4;

  // Eagerly first, which grows the scratch the narrowed input needs.
  std::vector<float> expected = new_inputs();
  run_on_cuda();
  ExpectNear(Download<float>(*cuda_, *d_out), expected, tolerance, 0, "eager");

  poison_out();
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  run_on_cuda();
  auto graph = cuda_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (float x : Download<float>(*cuda_, *d_out)) ASSERT_TRUE(std::isnan(x)) << "captured ops ran";

  for (int replay = 0; replay < 2; ++replay) {
    expected = new_inputs();
    poison_out();
    cuda_->Replay(**graph);
    ExpectNear(Download<float>(*cuda_, *d_out), expected, tolerance, 0,
               absl::StrCat("replay ", replay));
    // An eager Linear whose narrowed input (1.5 MiB, then 3 MiB) outgrows the scratch each time,
    // which retires the buffer the graph uses.
    const int64_t big_rows = (replay + 1) * 8192;
    auto big_in = Upload(*cuda_, RandomVector(big_rows * k, rng));
    auto big_out = Upload(*cuda_, std::vector<float>(big_rows * n));
    cuda_->Linear(big_in->as<float>(), big_rows, k, WeightView(d_w->data(), DType::kBF16),
                  nullptr, n, big_out->as<float>());
    cuda_->Synchronize();
  }
}

// Misuse of capture is a status, and leaves the backend working eagerly.
TEST_F(CudaKernelsTest, CaptureOutOfOrderIsAnErrorStatus) {
  auto d_x = Upload(*cuda_, std::vector<float>{1.0f, 2.0f});
  auto d_y = Upload(*cuda_, std::vector<float>{10.0f, 20.0f});
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  EXPECT_EQ(cuda_->BeginCapture().code(), absl::StatusCode::kFailedPrecondition);
  cuda_->Add(d_x->as<float>(), d_y->as<float>(), 2);
  ASSERT_TRUE(cuda_->EndCapture().ok());
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  cuda_->Add(d_x->as<float>(), d_y->as<float>(), 2);  // eagerly: once, the graph never replayed
  EXPECT_EQ(Download<float>(*cuda_, *d_x), (std::vector<float>{11.0f, 22.0f}));
}

}  // namespace
}  // namespace mlkv
