// The CUDA Backend: every op is queued on one stream in issue order (so ops need no
// synchronisation between them); CopyToHost and Synchronize wait for the stream. Shapes are the
// caller's responsibility (Backend contract); attention shapes the kernel cannot serve, or a
// failed CUDA call inside an op, abort with the reason (see cuda_check.h). Graph capture records
// the stream's work (cuda_graph.h).
#include "kernels/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_buffer.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/launchers.h"

namespace mlkv {
namespace {

absl::Status Unavailable(const char* what, cudaError_t error) {
  static_cast<void>(cudaGetLastError());
  return absl::UnavailableError(
      absl::StrCat("CUDA backend: ", what, ": ", cudaGetErrorString(error)));
}

// cuBLAS's scratch, given to it at creation because it must not allocate its own during a stream
// capture (Backend::BeginCapture). 32 MiB is NVIDIA's recommendation for Hopper (4 MiB for older
// GPUs); a smaller one can only restrict cuBLAS's choice of GEMM algorithm.
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

int ToInt(int64_t v, const char* what) {
  MLKV_CHECK(v >= 0 && v <= INT_MAX, "{} = {} does not fit cuBLAS's int", what, v);
  return static_cast<int>(v);
}

class CudaBackend final : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<Backend>> Create(const CudaBackendOptions& options) {
    const int count = CudaDeviceCount();
    if (count == 0) {
      return absl::UnavailableError("no CUDA device is visible (no GPU, or no driver)");
    }
    if (options.device < 0 || options.device >= count) {
      return absl::UnavailableError(
          absl::StrCat("no CUDA device ", options.device, " (", count, " visible)"));
    }
    std::unique_ptr<CudaBackend> backend(new CudaBackend(options));
    if (cudaError_t e = cudaSetDevice(options.device); e != cudaSuccess) {
      return Unavailable("cudaSetDevice", e);
    }
    if (cudaError_t e = cudaDeviceGetAttribute(&backend->num_sms_, cudaDevAttrMultiProcessorCount,
                                               options.device);
        e != cudaSuccess) {
      return Unavailable("multiprocessor count", e);
    }
    if (cudaError_t e = cudaStreamCreateWithFlags(&backend->stream_, cudaStreamNonBlocking);
        e != cudaSuccess) {
      return Unavailable("cudaStreamCreate", e);
    }
    if (cublasCreate(&backend->cublas_) != CUBLAS_STATUS_SUCCESS) {
      backend->cublas_ = nullptr;
      return absl::UnavailableError("CUDA backend: cublasCreate failed");
    }
    MLKV_CUBLAS_CHECK(cublasSetStream(backend->cublas_, backend->stream_));
    MLKV_CUBLAS_CHECK(cublasSetMathMode(
        backend->cublas_, options.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    // After cublasSetStream, which resets the handle to cuBLAS's own workspace pool.
    ASSIGN_OR_RETURN(backend->cublas_workspace_, backend->Allocate(kCublasWorkspaceBytes));
    MLKV_CUBLAS_CHECK(cublasSetWorkspace(backend->cublas_, backend->cublas_workspace_->data(),
                                         kCublasWorkspaceBytes));
    return std::unique_ptr<Backend>(std::move(backend));
  }

  // The buffers are members, freed after this body: cuBLAS's workspace after cublasDestroy.
  ~CudaBackend() override {
    // Errors are ignored: a destructor has no one to report to, and the process may be exiting.
    if (capturing_) cuda::AbandonStreamCapture(stream_);
    if (stream_ != nullptr) static_cast<void>(cudaStreamSynchronize(stream_));
    if (cublas_ != nullptr) static_cast<void>(cublasDestroy(cublas_));
    if (stream_ != nullptr) static_cast<void>(cudaStreamDestroy(stream_));
  }

  std::string name() const override { return "cuda"; }
  // The current device is per host thread.
  void AttachThread() override { MLKV_CUDA_CHECK(cudaSetDevice(options_.device)); }

  absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(size_t bytes) override {
    CheckNotCapturing("Allocate");
    if (bytes == 0) return std::unique_ptr<DeviceBuffer>(new CudaBuffer(nullptr, 0));
    void* data = nullptr;
    if (cudaError_t e = cudaMalloc(&data, bytes); e != cudaSuccess) {
      // Out of memory is not sticky: keep it from the next check.
      static_cast<void>(cudaGetLastError());
      size_t free_bytes = 0, total_bytes = 0;
      static_cast<void>(cudaMemGetInfo(&free_bytes, &total_bytes));
      return absl::ResourceExhaustedError(
          absl::StrCat("CUDA device ", options_.device, ": cannot allocate ", bytes, " bytes (",
                       free_bytes, " of ", total_bytes, " bytes free): ", cudaGetErrorString(e)));
    }
    // Queued on the stream like every op, so it is zero before any later op reads it.
    MLKV_CUDA_CHECK(cudaMemsetAsync(data, 0, bytes, stream_));
    return std::unique_ptr<DeviceBuffer>(new CudaBuffer(data, bytes));
  }
  // From pageable host memory the call returns once the source has been staged, so the caller
  // may reuse it at once.
  void CopyToDevice(void* dst, const void* host_src, size_t bytes) override {
    CheckNotCapturing("CopyToDevice");
    if (bytes == 0) return;
    MLKV_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) override {
    CheckNotCapturing("CopyToHost");
    if (bytes == 0) return;
    MLKV_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    MLKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void Synchronize() override {
    CheckNotCapturing("Synchronize");
    MLKV_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // The larger of the two users: a Linear's input narrowed to 16 bits, and the split-KV partial
  // results of the largest plan any step within the limits can make. As GrowScratch rounds it.
  int64_t ScratchBytes(const OpLimits& limits) const override {
    int64_t bytes = 0;
    if (limits.weight_dtype != DType::kF32) {
      bytes = limits.max_rows * limits.max_linear_k * DTypeBytes(limits.weight_dtype);
    }
    if (cuda::CheckAttentionShape(limits.num_heads, limits.num_kv_heads, limits.head_dim).ok()) {
      cuda::AttentionShape largest;
      largest.num_tokens = limits.max_rows;
      largest.num_heads = limits.num_heads;
      largest.num_kv_heads = limits.num_kv_heads;
      largest.head_dim = limits.head_dim;
      largest.max_context = limits.max_context;
      largest.kv_dtype = limits.kv_dtype;
      // Both kernels: a step whose pools turn out unaligned falls back to the SIMT one.
      for (const cuda::AttentionKernel kernel :
           {cuda::AttentionKernel::kSimt, options_.attention_kernel}) {
        largest.kernel = kernel;
        bytes = std::max(
            bytes, cuda::MaxAttentionWorkspace(largest, num_sms_, options_.attention_split_tokens));
      }
    }
    return RoundedScratch(bytes);
  }
  absl::Status ReserveScratch(const OpLimits& limits) override {
    CheckNotCapturing("ReserveScratch");
    const absl::Status grown = GrowScratch(ScratchBytes(limits));
    if (grown.ok()) return grown;
    return absl::Status(
        grown.code(), absl::StrCat("CUDA backend scratch for the largest step: ", grown.message()));
  }

  void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
                 float* out) override {
    cuda::LaunchGatherRows(table.data, table.dtype, cols, ids, rows, out, stream_);
  }
  void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                  float* out) override {
    cuda::LaunchGatherRows(in, DType::kF32, cols, indices, rows, out, stream_);
  }
  void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
                 int64_t cols, float* out) override {
    cuda::LaunchLayerNorm(in, gamma, beta, eps, rows, cols, out, stream_);
  }

  // Row-major out[rows, n] = in[rows, k] W[n, k]^T is column-major out^T = W^T' in^T', i.e. a
  // column-major GEMM with A = W (k x n, transposed) and B = in (k x rows). The epilogue takes one
  // small kernel beside the GEMM: the bias broadcast into out before a GEMM that accumulates onto
  // it (beta = 1); for a residual add, the bias added onto out before the same; for GELU, bias
  // and GELU together after a GEMM that stores (beta = 0). f16/bf16 weights take the input
  // rounded to their dtype (cuBLAS has no 16-bit x float32 GEMM) and run on the tensor cores with
  // float32 accumulation and output, as PyTorch's half-precision Linear does.
  void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
              int64_t n, LinearEpilogue epilogue, float* out) override {
    if (rows == 0 || n == 0) return;
    const bool gelu =
        epilogue == LinearEpilogue::kGeluExact || epilogue == LinearEpilogue::kGeluTanh;
    float beta = 0.0f;
    if (epilogue == LinearEpilogue::kAccumulate) {
      if (bias != nullptr) cuda::LaunchAddRows(bias, rows, n, out, stream_);
      beta = 1.0f;
    } else if (bias != nullptr && !gelu) {
      cuda::LaunchBroadcastRows(bias, rows, n, out, stream_);
      beta = 1.0f;
    }
    Gemm(in, rows, k, weight, n, beta, out);
    if (gelu) {
      cuda::LaunchBiasGelu(bias, rows, n, epilogue == LinearEpilogue::kGeluExact, out, stream_);
    }
  }
  void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
              const RotaryView& rotary) override {
    cuda::LaunchRotary(x, rows, num_heads, head_dim, positions, rotary, stream_);
  }
  void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) override {
    cuda::LaunchArgmaxRows(in, rows, cols, out, stream_);
  }
  void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                  int32_t* out) override {
    cuda::LaunchSampleRows(logits, rows, cols, params, out, stream_);
  }
  void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                    const KvCacheView& cache) override {
    cuda::LaunchWriteKvCache(k, v, batch, cache, stream_);
  }
  void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                      const RotaryView& rotary, const AttentionParams& params,
                      float* out) override {
    if (batch.num_tokens == 0) return;
    const absl::Status supported =
        cuda::CheckAttentionShape(params.num_heads, cache.num_kv_heads, cache.head_dim);
    MLKV_CHECK(supported.ok(), "{}", supported.ToString());
    cuda::AttentionShape shape;
    shape.num_tokens = batch.num_tokens;
    shape.num_heads = params.num_heads;
    shape.num_kv_heads = cache.num_kv_heads;
    shape.head_dim = cache.head_dim;
    shape.max_context = batch.max_blocks_per_seq * cache.block_size;
    shape.num_seqs = batch.num_seqs;
    shape.kernel = options_.attention_kernel;
    shape.kv_dtype = cache.dtype;
    shape.pools_aligned = reinterpret_cast<uintptr_t>(cache.k_cache) % 16 == 0 &&
                          reinterpret_cast<uintptr_t>(cache.v_cache) % 16 == 0;
    const cuda::AttentionPlan plan =
        cuda::PlanAttention(shape, num_sms_, options_.attention_split_tokens);
    cuda::LaunchPagedAttention(q, batch, cache, rotary, params, plan, Scratch(plan.workspace_bytes),
                               out, stream_);
  }

  absl::Status BeginCapture() override {
    if (capturing_) return absl::FailedPreconditionError("BeginCapture during a capture");
    RETURN_IF_ERROR(cuda::BeginStreamCapture(stream_));
    capturing_ = true;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<BackendGraph>> EndCapture() override {
    if (!capturing_) return absl::FailedPreconditionError("EndCapture without BeginCapture");
    capturing_ = false;
    return cuda::EndStreamCapture(stream_, this);
  }
  void Replay(const BackendGraph& graph) override {
    const auto* cuda_graph = dynamic_cast<const cuda::CudaGraph*>(&graph);
    MLKV_CHECK(cuda_graph != nullptr && cuda_graph->owner() == this,
               "Replay of a graph that this CUDA backend did not capture");
    MLKV_CUDA_CHECK(cudaGraphLaunch(cuda_graph->exec(), stream_));
  }

 private:
  explicit CudaBackend(const CudaBackendOptions& options) : options_(options) {}

  // out = in W^T + beta out, column-major as Linear describes.
  void Gemm(const float* in, int64_t rows, int64_t k, const WeightView& weight, int64_t n,
            float beta, float* out) {
    const float alpha = 1.0f;
    const int m_n = ToInt(n, "n"), m_rows = ToInt(rows, "rows"), m_k = ToInt(k, "k");
    if (weight.dtype == DType::kF32) {
      MLKV_CUBLAS_CHECK(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m_n, m_rows, m_k, &alpha,
                                    static_cast<const float*>(weight.data), m_k, in, m_k, &beta,
                                    out, m_n));
      return;
    }
    const cudaDataType_t type = weight.dtype == DType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
    void* narrow_in = Scratch(rows * k * DTypeBytes(weight.dtype));
    cuda::LaunchNarrow(in, rows * k, weight.dtype, narrow_in, stream_);
    MLKV_CUBLAS_CHECK(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m_n, m_rows, m_k, &alpha,
                                   weight.data, type, m_k, narrow_in, type, m_k, &beta, out,
                                   CUDA_R_32F, m_n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  // Inside a capture these would run at once rather than be recorded, or be recorded with a host
  // pointer that replay would read again: a capture holds ops only (Backend contract).
  void CheckNotCapturing(const char* call) const {
    MLKV_CHECK(!capturing_, "{} between BeginCapture and EndCapture, where only ops may be issued",
               call);
  }

  // Scratch for split-KV partial results and narrowed GEMM inputs: reserved for the engine's
  // largest step at start-up (ReserveScratch), else grown on demand. Sharing it between ops is
  // safe because they all run in order on stream_ and none keeps it past its own launches. A
  // captured graph keeps the address it was captured with, so a grown-out buffer is retired
  // rather than freed, until the backend is destroyed. Each growth at least doubles the size,
  // which bounds the waste: the retired buffers together are smaller than the current one, itself
  // under twice the largest request (plus the rounding).
  absl::Status GrowScratch(int64_t bytes) {
    const int64_t have = scratch_ != nullptr ? static_cast<int64_t>(scratch_->bytes()) : 0;
    if (bytes <= have) return absl::OkStatus();
    // A cudaMalloc would fail inside a capture and invalidate it.
    MLKV_CHECK(!capturing_,
               "an op needs {} bytes of scratch during a graph capture, which has {}: run the ops "
               "once eagerly before capturing them, so that the scratch grows first",
               bytes, have);
    ASSIGN_OR_RETURN(std::unique_ptr<DeviceBuffer> grown,
                     Allocate(static_cast<size_t>(std::max(RoundedScratch(bytes), 2 * have))));
    if (scratch_ != nullptr) retired_scratch_.push_back(std::move(scratch_));
    scratch_ = std::move(grown);
    return absl::OkStatus();
  }
  void* Scratch(int64_t bytes) {
    const absl::Status grown = GrowScratch(bytes);
    MLKV_CHECK(grown.ok(), "CUDA backend scratch: {}", grown.ToString());
    return scratch_ != nullptr ? scratch_->data() : nullptr;
  }
  // Rounded up so that small growth reallocates rarely.
  static int64_t RoundedScratch(int64_t bytes) {
    constexpr int64_t kGranule = int64_t{1} << 20;
    return (bytes + kGranule - 1) / kGranule * kGranule;
  }

  const CudaBackendOptions options_;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<DeviceBuffer> cublas_workspace_;
  std::unique_ptr<DeviceBuffer> scratch_;
  std::vector<std::unique_ptr<DeviceBuffer>> retired_scratch_;  // see GrowScratch()
  bool capturing_ = false;  // between BeginCapture and EndCapture
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options) {
  return CudaBackend::Create(options);
}

}  // namespace mlkv
