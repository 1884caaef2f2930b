// The compute interface the model runs on: one implementation per device (kernels/cpu,
// kernels/cuda). Every pointer argument is memory of this backend (see DeviceBuffer), all
// activations are row-major float32, and ops run in issue order (a backend may queue them:
// Synchronize() or a copy to the host waits for them).
#ifndef MLKV_KERNELS_BACKEND_H_
#define MLKV_KERNELS_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "kernels/device_buffer.h"
#include "kernels/paged_kv.h"

namespace mlkv {

// What Linear does with its product p = in * weight^T + bias. The elementwise work that follows
// a transformer's projections (GELU after the MLP's first, the residual adds after the attention
// and MLP outputs) is fused into them, so that an activation crosses memory once instead of two or
// three times, and a decode step launches fewer kernels.
enum class LinearEpilogue {
  kStore,      // out = p
  kGeluExact,  // out = gelu(p) = 0.5 p (1 + erf(p / sqrt(2)))
  kGeluTanh,   // out = gelu(p), the tanh approximation
  kAccumulate  // out += p: a residual add onto what out holds
};

// A weight matrix or embedding table in backend memory: row-major elements of `dtype` (f32, f16
// or bf16). Weights may be stored narrower than the float32 activations to halve their memory and
// the bytes a decode step streams; ops widen them as they read and accumulate in float32. A
// float32 pointer converts implicitly, so float32 callers read as before.
struct WeightView {
  WeightView(const float* f32_data) : data(f32_data) {}  // NOLINT: implicit on purpose
  WeightView(const void* data, DType dtype) : data(data), dtype(dtype) {}
  const void* data = nullptr;
  DType dtype = DType::kF32;
};

// Per-row parameters of SampleRows (an array of them in backend memory, one per row).
struct RowSampling {
  float temperature = 1.0f;  // >= 0; 0: greedy, the ArgmaxRows answer (the other fields unused)
  int32_t top_k = 0;         // keep the top_k highest logits; 0 (or >= cols): all
  float top_p = 1.0f;        // (0, 1]: keep the smallest highest-first set with top_p of the mass
  float min_p = 0.0f;        // [0, 1): keep tokens with probability >= min_p x the top token's
  uint64_t seed = 0;         // the request's random stream...
  uint64_t draw = 0;         // ...and the index of this draw in it (tokens sampled before)
};
// Copied to the device as bytes: the layout must be the same in every compiler that reads it.
// These hold in nvcc's device pass too, which compiles this header for kernels/cuda.
static_assert(sizeof(RowSampling) == 32 && alignof(RowSampling) == 8);
static_assert(offsetof(RowSampling, seed) == 16 && offsetof(RowSampling, draw) == 24);

// The largest ops of the steps a model will run, from which a backend sizes the scratch memory
// its ops use beyond their arguments (Backend::ScratchBytes).
struct OpLimits {
  int64_t max_rows = 0;      // rows of any Linear or PagedAttention call: a step's tokens
  int64_t max_linear_k = 0;  // the widest Linear input
  DType weight_dtype = DType::kF32;
  int64_t num_heads = 0;  // of PagedAttention
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_context = 0;  // cached tokens one attention row may read (table width x block size)
  DType kv_dtype = DType::kF32;
};

// A recorded sequence of a backend's ops (a CUDA graph), replayed by Backend::Replay.
class BackendGraph {
 public:
  virtual ~BackendGraph() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual std::string name() const = 0;

  // Called on a thread before it issues ops, for settings that are per thread (the CPU backend's
  // OpenMP thread count; a CUDA backend's current device).
  virtual void AttachThread() {}

  // Memory. Allocate returns zeroed memory, or RESOURCE_EXHAUSTED.
  virtual absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) = 0;
  virtual void CopyToDevice(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void CopyToHost(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void Synchronize() = 0;

  // Scratch: memory that ops use beyond their arguments (the CUDA backend's narrowed GEMM inputs
  // and split-KV partial results). ScratchBytes is the most that ops within `limits` use;
  // ReserveScratch allocates it now (RESOURCE_EXHAUSTED if it cannot), so that a memory plan can
  // count it before the KV pool takes the rest and no op within the limits allocates while
  // serving. A backend without scratch (the CPU's) answers 0 and OK, the defaults.
  virtual int64_t ScratchBytes(const OpLimits& limits) const;
  virtual absl::Status ReserveScratch(const OpLimits& limits);

  // out[t, :] = table[ids[t], :] (widened to float32) for t < rows; ids are already validated.
  virtual void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
                         float* out) = 0;
  // out[t, :] = in[indices[t], :] for t < rows.
  virtual void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                          float* out) = 0;
  // out = (in - mean) / sqrt(var + eps) * gamma + beta, per row of `cols`.
  virtual void LayerNorm(const float* in, const float* gamma, const float* beta, float eps,
                         int64_t rows, int64_t cols, float* out) = 0;
  // p[rows, n] = in[rows, k] * weight[n, k]^T + bias[n] (bias may be null), accumulated in
  // float32, and out[rows, n] takes it as `epilogue` says. With f16/bf16 weights a backend may
  // round `in` to the weights' dtype first (the CUDA backend does, for the tensor cores; the CPU
  // backend keeps it float32). `in` and `out` must not overlap.
  virtual void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight,
                      const float* bias, int64_t n, LinearEpilogue epilogue, float* out) = 0;
  // Rotates the first rotary_dims of each head of x[rows][num_heads][head_dim] in place by the
  // row's position.
  virtual void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim,
                      const int32_t* positions, const RotaryView& rotary) = 0;

  // out[r] = the index of the largest value of row r of in[rows][cols]: the lowest such index on
  // ties; NaN is never chosen unless the whole row is NaN (then cols - 1). Greedy sampling where
  // the logits are, so that only token ids cross to the host. `out` is backend memory.
  virtual void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) = 0;

  // out[r] = a token drawn from row r of logits[rows][cols] (cols >= 1) by params[r], so that on
  // a GPU only token ids cross to the host. logits, params and out are backend memory. A draw is
  // a pure function of its row, its parameters and (seed, draw): the same whatever else is in
  // the batch, and a request recomputed after preemption continues its stream where it was.
  // Per row x (the bounds of RowSampling's fields are preconditions):
  //   0. temperature == 0: the answer is the ArgmaxRows answer and nothing is drawn, whatever the
  //      other fields hold, so that one call serves greedy and sampled rows alike.
  //   1. Candidates: every index whose logit is neither NaN nor -inf. If the row's maximum (by
  //      ArgmaxRows' rule) is not finite (+inf, or no candidate at all), the answer is the
  //      ArgmaxRows answer and nothing is drawn.
  //   2. Rank order: the higher logit first, the lower index first on equal logits (-0 == +0).
  //   3. top-k (0 < top_k < candidates): keep the first top_k candidates in rank order.
  //   4. p_i = exp((x_i - max) / temperature), the quotient in float32 and the exp in double, for
  //      every kept i (the top token's p is exactly 1); total = their sum, in double.
  //   5. top-p (top_p < 1): keep the shortest rank-order prefix of the kept candidates whose mass
  //      reaches top_p x total (at least the top token; all of them if rounding falls short).
  //   6. min-p (min_p > 0): keep those with p_i >= min_p.
  //   7. Draw u = PhiloxUniform(seed, draw) (common/philox.h) and answer the smallest index i of
  //      the kept candidates whose running sum of p over the kept j <= i, in index order, exceeds
  //      u x (the sum of the kept p). Strictly: a token whose p underflowed to 0 is never drawn.
  //      If rounding leaves no such i, the kept candidate with the highest index and p > 0.
  // Both backends compute p with kernels/sample_weight.h but sum in different orders, so they
  // agree on the token except where u x the kept sum falls within the sums' rounding (far below
  // 1e-9 of it) of a boundary of the walk (kernels/cpu/sample_rows.h measures that margin).
  virtual void SampleRows(const float* logits, int64_t rows, int64_t cols,
                          const RowSampling* params, int32_t* out) = 0;

  // Stores k and v ([num_tokens][num_kv_heads][head_dim]) at the batch's slot_mapping. A row whose
  // slot is negative writes nothing: a padding row (vLLM's slot -1), so that a batch padded to a
  // fixed size leaves the cache as the unpadded batch would.
  virtual void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                            const KvCacheView& cache) = 0;
  // Causal attention of every row's query heads ([num_tokens][num_heads][head_dim]) over its
  // sequence's cached tokens 0..position; out has q's shape.
  virtual void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                              const RotaryView& rotary, const AttentionParams& params,
                              float* out) = 0;

  // Graph capture: the ops issued between BeginCapture and EndCapture are recorded, not run, and
  // EndCapture returns them; Replay runs them, as often as wanted, on the same pointers and sizes
  // with what those buffers hold at replay time. Between the two calls only ops may be issued
  // (no Allocate, CopyToDevice, CopyToHost or Synchronize), all on the thread that began the
  // capture. An op may grow backend scratch or load its code on first use, which cannot happen
  // inside a capture: run the ops once eagerly before capturing them. A backend without graphs
  // returns Unimplemented from BeginCapture (the default); the caller then runs its ops eagerly.
  virtual absl::Status BeginCapture();
  // The recorded ops, or an error (no capture was begun, or the capture failed); either way ops
  // run eagerly again afterwards.
  virtual absl::StatusOr<std::unique_ptr<BackendGraph>> EndCapture();
  // Queues a graph that this backend's EndCapture returned, in issue order like any op.
  virtual void Replay(const BackendGraph& graph);

 protected:
  Backend() = default;
};

}  // namespace mlkv

#endif  // MLKV_KERNELS_BACKEND_H_
