// Test helper: a Backend that runs every op on another backend and counts its allocations and the
// rows it samples, and can refuse allocations past a byte limit, as a full device does. It can
// also act as a backend with scratch memory (set_scratch_bytes), as the CUDA backend is. For
// tests only.
#ifndef MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_
#define MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/backend.h"

namespace mlkv::testing {

class CountingBackend final : public Backend {
 public:
  // Allocations beyond `limit_bytes` in all (freed buffers are not given back) fail with
  // RESOURCE_EXHAUSTED.
  explicit CountingBackend(std::unique_ptr<Backend> inner,
                           int64_t limit_bytes = std::numeric_limits<int64_t>::max())
      : inner_(std::move(inner)), limit_bytes_(limit_bytes) {}

  // Thread-safe: an engine allocates on its own thread.
  int64_t num_allocations() const { return num_allocations_; }
  int64_t allocated_bytes() const { return allocated_bytes_; }
  int64_t sampled_rows() const { return sampled_rows_; }  // rows drawn by SampleRows so far

  // From now on ScratchBytes answers `bytes` whatever the limits, and ReserveScratch allocates
  // that much (counted, and refused past the limit) and remembers the limits it was given.
  void set_scratch_bytes(int64_t bytes) { scratch_bytes_ = bytes; }
  const std::optional<OpLimits>& reserved_scratch_for() const { return reserved_scratch_for_; }

  std::string name() const override { return inner_->name(); }
  void AttachThread() override { inner_->AttachThread(); }
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) override {
    const int64_t size = static_cast<int64_t>(bytes);
    if (size > limit_bytes_ - allocated_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", size,
                                                       " bytes: ", allocated_bytes_.load(), " of ",
                                                       limit_bytes_, " taken"));
    }
    ++num_allocations_;
    allocated_bytes_ += size;
    return inner_->Allocate(bytes);
  }
  int64_t ScratchBytes(const OpLimits&) const override { return scratch_bytes_; }
  absl::Status ReserveScratch(const OpLimits& limits) override {
    reserved_scratch_for_ = limits;
    if (scratch_bytes_ == 0) return absl::OkStatus();
    absl::StatusOr<std::unique_ptr<DeviceBuffer>> scratch = Allocate(scratch_bytes_);
    if (!scratch.ok()) return scratch.status();
    scratch_ = *std::move(scratch);
    return absl::OkStatus();
  }
  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    inner_->CopyToDevice(dst, src, bytes);
  }
  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    inner_->CopyToHost(dst, src, bytes);
  }
  void Synchronize() override { inner_->Synchronize(); }
  void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
                 float* out) override {
    inner_->Embedding(table, cols, ids, rows, out);
  }
  void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                  float* out) override {
    inner_->GatherRows(in, cols, indices, rows, out);
  }
  void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
                 int64_t cols, float* out) override {
    inner_->LayerNorm(in, gamma, beta, eps, rows, cols, out);
  }
  void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
              int64_t n, LinearEpilogue epilogue, float* out) override {
    inner_->Linear(in, rows, k, weight, bias, n, epilogue, out);
  }
  void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
              const RotaryView& rotary) override {
    inner_->Rotary(x, rows, num_heads, head_dim, positions, rotary);
  }
  void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) override {
    inner_->ArgmaxRows(in, rows, cols, out);
  }
  void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                  int32_t* out) override {
    sampled_rows_ += rows;
    inner_->SampleRows(logits, rows, cols, params, out);
  }
  void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                    const KvCacheView& cache) override {
    inner_->WriteKvCache(k, v, batch, cache);
  }
  void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                      const RotaryView& rotary, const AttentionParams& params,
                      float* out) override {
    inner_->PagedAttention(q, batch, cache, rotary, params, out);
  }
  absl::Status BeginCapture() override { return inner_->BeginCapture(); }
  absl::StatusOr<std::unique_ptr<BackendGraph>> EndCapture() override {
    return inner_->EndCapture();
  }
  void Replay(const BackendGraph& graph) override { inner_->Replay(graph); }

 private:
  std::unique_ptr<Backend> inner_;
  const int64_t limit_bytes_;
  std::atomic<int64_t> num_allocations_ = 0;
  std::atomic<int64_t> allocated_bytes_ = 0;
  std::atomic<int64_t> sampled_rows_ = 0;
  int64_t scratch_bytes_ = 0;
  std::optional<OpLimits> reserved_scratch_for_;
  std::unique_ptr<DeviceBuffer> scratch_;  // after inner_: freed before it
};

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_
