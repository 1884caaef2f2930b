// Test helper: graph capture on the CPU. A Backend that runs every op on another backend, except
// between BeginCapture and EndCapture, where it records each op with its arguments copied, as a
// CUDA graph records a kernel's parameters; Replay runs the recording again. A model step replayed
// through it gets the right answer only if everything that changes between steps reaches the ops
// through backend memory, not through values baked into the recording, which is what CUDA graphs
// need too. Anything but an op during a capture fails the test. For tests only.
#ifndef MLKV_ENGINE_TESTING_RECORDING_BACKEND_H_
#define MLKV_ENGINE_TESTING_RECORDING_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"

namespace mlkv::testing {

class RecordingBackend final : public Backend {
 public:
  explicit RecordingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  int64_t num_captures() const { return num_captures_; }
  int64_t num_replays() const { return num_replays_; }

  std::string name() const override { return inner_->name(); }
  void AttachThread() override { inner_->AttachThread(); }
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) override {
    ExpectNotRecording("Allocate");
    return inner_->Allocate(bytes);
  }
  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    ExpectNotRecording("CopyToDevice");
    inner_->CopyToDevice(dst, src, bytes);
  }
  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    ExpectNotRecording("CopyToHost");
    inner_->CopyToHost(dst, src, bytes);
  }
  void Synchronize() override {
    ExpectNotRecording("Synchronize");
    inner_->Synchronize();
  }
  int64_t ScratchBytes(const OpLimits& limits) const override {
    return inner_->ScratchBytes(limits);
  }
  absl::Status ReserveScratch(const OpLimits& limits) override {
    ExpectNotRecording("ReserveScratch");  // it allocates
    return inner_->ReserveScratch(limits);
  }

  // Every op goes through Issue, its arguments captured by value.
  void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
                 float* out) override {
    Issue([=, this] { inner_->Embedding(table, cols, ids, rows, out); });
  }
  void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                  float* out) override {
    Issue([=, this] { inner_->GatherRows(in, cols, indices, rows, out); });
  }
  void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
                 int64_t cols, float* out) override {
    Issue([=, this] { inner_->LayerNorm(in, gamma, beta, eps, rows, cols, out); });
  }
  void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
              int64_t n, LinearEpilogue epilogue, float* out) override {
    Issue([=, this] { inner_->Linear(in, rows, k, weight, bias, n, epilogue, out); });
  }
  void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
              const RotaryView& rotary) override {
    Issue([=, this] { inner_->Rotary(x, rows, num_heads, head_dim, positions, rotary); });
  }
  void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) override {
    Issue([=, this] { inner_->ArgmaxRows(in, rows, cols, out); });
  }
  void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                  int32_t* out) override {
    Issue([=, this] { inner_->SampleRows(logits, rows, cols, params, out); });
  }
  void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                    const KvCacheView& cache) override {
    Issue([=, this] { inner_->WriteKvCache(k, v, batch, cache); });
  }
  void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                      const RotaryView& rotary, const AttentionParams& params,
                      float* out) override {
    Issue([=, this] { inner_->PagedAttention(q, batch, cache, rotary, params, out); });
  }

  absl::Status BeginCapture() override {
    if (recording_ != nullptr) return absl::FailedPreconditionError("capture in a capture");
    recording_ = std::make_unique<Recording>();
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<BackendGraph>> EndCapture() override {
    if (recording_ == nullptr) return absl::FailedPreconditionError("no capture to end");
    ++num_captures_;
    return std::unique_ptr<BackendGraph>(std::move(recording_));
  }
  void Replay(const BackendGraph& graph) override {
    ExpectNotRecording("Replay");
    ++num_replays_;
    for (const auto& op : dynamic_cast<const Recording&>(graph).ops) op();
  }

 private:
  struct Recording final : BackendGraph {
    std::vector<std::function<void()>> ops;
  };

  void Issue(std::function<void()> op) {
    if (recording_ != nullptr) {
      recording_->ops.push_back(std::move(op));
    } else {
      op();
    }
  }
  void ExpectNotRecording(const char* call) const {
    EXPECT_EQ(recording_, nullptr) << call << " during a capture: only ops may be recorded";
  }

  std::unique_ptr<Backend> inner_;
  std::unique_ptr<Recording> recording_;  // set between BeginCapture and EndCapture
  int64_t num_captures_ = 0, num_replays_ = 0;
};

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_RECORDING_BACKEND_H_
