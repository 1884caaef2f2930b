// Test helper: a Backend that runs every op on another backend and counts its allocations and the
// rows it samples, and can refuse allocations past a byte limit, as a full device does. For tests
// only.
#ifndef MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_
#define MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
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

  std::string name() const override { return inner_->name(); }
  void AttachThread() override { inner_->AttachThread(); }
  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) override {
    const int64_t size = static_cast<int64_t>(bytes);
    if (size > limit_bytes_ - allocated_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", size, " bytes: ", allocated_bytes_.load(), " of ", limit_bytes_,
          " taken"));
    }
    ++num_allocations_;
    allocated_bytes_ += size;
    return inner_->Allocate(bytes);
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
  void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim,
              const int32_t* positions, const RotaryView& rotary) override {
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
};

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_COUNTING_BACKEND_H_
