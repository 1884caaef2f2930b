// The CPU Backend: forwards each op to its kernel in kernels/cpu; memory is plain host memory, so
// copies are memcpy and every op completes before it returns.
#include "kernels/cpu/cpu_backend.h"

#include <omp.h>

#include <cstring>

#include "kernels/cpu/argmax.h"
#include "kernels/cpu/cpu_buffer.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rotary.h"
#include "kernels/cpu/sample_rows.h"

namespace mlkv {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) : num_threads_(num_threads) {}

  std::string name() const override { return "cpu"; }
  // OpenMP keeps the thread count per thread: set it on every thread that runs ops.
  void AttachThread() override {
    if (num_threads_ > 0) omp_set_num_threads(num_threads_);
  }

  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) override {
    return CpuBuffer::Create(bytes);
  }
  void CopyToDevice(void* dst, const void* host_src, size_t bytes) override {
    std::memcpy(dst, host_src, bytes);
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    std::memcpy(host_dst, src, bytes);
  }
  void Synchronize() override {}

  void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
                 float* out) override {
    cpu::Embedding(table, cols, ids, rows, out);
  }
  void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                  float* out) override {
    cpu::GatherRows(in, cols, indices, rows, out);
  }
  void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
                 int64_t cols, float* out) override {
    cpu::LayerNorm(in, gamma, beta, eps, rows, cols, out);
  }
  void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
              int64_t n, LinearEpilogue epilogue, float* out) override {
    cpu::Linear(in, rows, k, weight, bias, n, epilogue, out);
  }
  void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
              const RotaryView& rotary) override {
    cpu::Rotary(x, rows, num_heads, head_dim, positions, rotary);
  }
  void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) override {
    cpu::ArgmaxRows(in, rows, cols, out);
  }
  void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                  int32_t* out) override {
    cpu::SampleRows(logits, rows, cols, params, out);
  }
  void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                    const KvCacheView& cache) override {
    cpu::WriteKvCache(k, v, batch, cache);
  }
  void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                      const RotaryView& rotary, const AttentionParams& params,
                      float* out) override {
    cpu::PagedAttention(q, batch, cache, rotary, params, out);
  }

 private:
  const int num_threads_;  // <= 0: OpenMP's default
};

}  // namespace

std::unique_ptr<Backend> CreateCpuBackend(int num_threads) {
  auto backend = std::make_unique<CpuBackend>(num_threads);
  backend->AttachThread();  // the creating thread usually loads the model and may run it
  return backend;
}

}  // namespace mlkv
