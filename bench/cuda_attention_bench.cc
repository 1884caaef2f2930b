// Paged attention on the CUDA backend, both kernels (SIMT and tensor cores) side by side.
//
// Decode: bytes of KV cache read per second, as a fraction of the device-to-device copy bandwidth
// measured in the same run (the memory-bound ceiling; the goal is >= 0.8). Pythia-160M
// head shape (12 query heads, d = 64), block size 16, shuffled blocks, one decode row per
// sequence, group sizes 1 (MHA), 4 (GQA) and 12 (MQA/MLKV), f32 and bf16 caches (the tensor-core
// kernel serves bf16 only). Batch x context is sized to ~1 GiB of KV so the GPU is full.
//
// Prompt chunks: 8 sequences each attending a chunk of 512 rows that ends at the context, in
// TFLOP/s (4 x rows x heads x head_dim x the tokens each row reads, causal), bf16 cache.
//
//   cuda_attention_bench [kv_mib] [context]     (defaults 1024 and 4096)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace mlkv {
namespace {

template <typename T>
std::unique_ptr<DeviceBuffer> Upload(Backend& backend, const std::vector<T>& host) {
  auto buffer = backend.Allocate(host.size() * sizeof(T));
  if (!buffer.ok()) {
    std::fprintf(stderr, "%s\n", buffer.status().ToString().c_str());
    std::exit(1);
  }
  backend.CopyToDevice((*buffer)->data(), host.data(), host.size() * sizeof(T));
  return std::move(*buffer);
}

constexpr int64_t kHeads = 12, kHeadDim = 64, kBlockSize = 16;

// Bytes of K and V one sequence of `context` tokens caches.
int64_t KvBytesPerSeq(int64_t num_kv_heads, DType dtype, int64_t context) {
  return context * num_kv_heads * kHeadDim * 2 * DTypeBytes(dtype);
}

struct Result {
  double seconds, kv_bytes, flops;
  int64_t batch;
};

// `batch` sequences of `context` tokens, each attending its last `chunk_rows` positions.
Result RunCase(Backend& backend, int64_t num_kv_heads, DType dtype, int64_t batch, int64_t context,
               int64_t chunk_rows) {
  const int64_t blocks_per_seq = (context + kBlockSize - 1) / kBlockSize;
  const int64_t num_blocks = batch * blocks_per_seq;
  std::mt19937 rng(1);
  std::vector<int32_t> table(num_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  std::vector<int32_t> positions, query_start = {0};
  double tokens_read = 0.0;
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t p = context - chunk_rows; p < context; ++p) {
      positions.push_back(static_cast<int32_t>(p));
      tokens_read += static_cast<double>(p + 1);
    }
    query_start.push_back(static_cast<int32_t>(positions.size()));
  }
  const int64_t rows = static_cast<int64_t>(positions.size());
  std::vector<int32_t> context_lens(batch, static_cast<int32_t>(context));
  std::vector<float> q(rows * kHeads * kHeadDim, 0.1f);

  const size_t pool_bytes = num_blocks * kBlockSize * num_kv_heads * kHeadDim * DTypeBytes(dtype);
  auto k_pool = backend.Allocate(pool_bytes);
  auto v_pool = backend.Allocate(pool_bytes);
  if (!k_pool.ok() || !v_pool.ok()) {
    std::fprintf(stderr, "cannot allocate the KV pools (%zu bytes each)\n", pool_bytes);
    std::exit(1);
  }
  auto d_table = Upload(backend, table), d_pos = Upload(backend, positions),
       d_qs = Upload(backend, query_start), d_ctx = Upload(backend, context_lens),
       d_q = Upload(backend, q), d_out = Upload(backend, q);
  const KvCacheView cache{(*k_pool)->data(), (*v_pool)->data(), dtype,   num_blocks,
                          kBlockSize,        num_kv_heads,      kHeadDim};
  const StepBatchView step{rows,
                           d_pos->as<int32_t>(),
                           nullptr,
                           batch,
                           d_qs->as<int32_t>(),
                           d_ctx->as<int32_t>(),
                           d_table->as<int32_t>(),
                           blocks_per_seq};
  const AttentionParams params{kHeads, 0.125f, false};
  auto run = [&] {
    backend.PagedAttention(d_q->as<float>(), step, cache, RotaryView{}, params, d_out->as<float>());
  };
  for (int i = 0; i < 3; ++i) run();
  backend.Synchronize();
  constexpr int kIterations = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIterations; ++i) run();
  backend.Synchronize();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / kIterations;
  return {seconds, static_cast<double>(batch * KvBytesPerSeq(num_kv_heads, dtype, context)),
          4.0 * kHeads * kHeadDim * tokens_read, batch};
}

std::unique_ptr<Backend> CudaBackendOrExit(cuda::AttentionKernel kernel) {
  CudaBackendOptions options;
  options.attention_kernel = kernel;
  auto backend = CreateCudaBackend(options);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*backend);
}

const char* KernelName(cuda::AttentionKernel kernel) {
  return kernel == cuda::AttentionKernel::kTensorCore ? "mma" : "simt";
}

constexpr char kUsage[] =
    "usage: cuda_attention_bench [kv_mib > 0 (1024)] [context >= 512 (4096)]\n";

int Main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const int64_t kv_mib = argc > 1 ? std::atoll(argv[1]) : 1024;
  const int64_t context = argc > 2 ? std::atoll(argv[2]) : 4096;
  if (kv_mib <= 0 || context < 512) {
    std::fputs(kUsage, stderr);
    return 1;
  }
  const std::unique_ptr<Backend> simt = CudaBackendOrExit(cuda::AttentionKernel::kSimt);
  const std::unique_ptr<Backend> mma = CudaBackendOrExit(cuda::AttentionKernel::kTensorCore);
  auto memory = QueryDeviceMemory(0);
  auto copy = MeasureCopyBandwidth(0, size_t{512} << 20, 10);
  if (!memory.ok() || !copy.ok()) {
    std::fprintf(stderr, "device query failed\n");
    return 1;
  }
  std::printf("device: %s, %.1f GiB; d2d copy bandwidth (read + write): %.0f GB/s\n",
              memory->name.c_str(), memory->total_bytes / double(1 << 30), *copy / 1e9);
  std::printf("decode:\n%-6s %-7s %-5s %-6s %6s %8s %9s %10s %9s %9s\n", "group", "kv_head",
              "dtype", "kernel", "batch", "context", "KV MiB", "time us", "KV GB/s", "vs copy");
  for (int64_t group : {1, 4, 12}) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      for (cuda::AttentionKernel kernel :
           {cuda::AttentionKernel::kSimt, cuda::AttentionKernel::kTensorCore}) {
        if (kernel == cuda::AttentionKernel::kTensorCore && dtype == DType::kF32) continue;
        const int64_t kv_heads = 12 / group;
        const int64_t batch =
            std::max<int64_t>(1, (kv_mib << 20) / KvBytesPerSeq(kv_heads, dtype, context));
        Backend& backend = kernel == cuda::AttentionKernel::kSimt ? *simt : *mma;
        const Result r = RunCase(backend, kv_heads, dtype, batch, context, 1);
        const double bandwidth = r.kv_bytes / r.seconds;
        std::printf("%-6lld %-7lld %-5s %-6s %6lld %8lld %9.0f %10.1f %9.0f %9.2f\n",
                    static_cast<long long>(group), static_cast<long long>(kv_heads),
                    DTypeName(dtype), KernelName(kernel), static_cast<long long>(r.batch),
                    static_cast<long long>(context), r.kv_bytes / (1 << 20), r.seconds * 1e6,
                    bandwidth / 1e9, bandwidth / *copy);
      }
    }
  }
  constexpr int64_t kChunkSeqs = 8, kChunkRows = 512;
  std::printf(
      "prompt chunks (%lld sequences x %lld rows ending at %lld tokens, bf16):\n"
      "%-6s %-6s %10s %9s\n",
      static_cast<long long>(kChunkSeqs), static_cast<long long>(kChunkRows),
      static_cast<long long>(context), "group", "kernel", "time us", "TFLOP/s");
  for (int64_t group : {1, 4, 12}) {
    for (cuda::AttentionKernel kernel :
         {cuda::AttentionKernel::kSimt, cuda::AttentionKernel::kTensorCore}) {
      Backend& backend = kernel == cuda::AttentionKernel::kSimt ? *simt : *mma;
      const Result r = RunCase(backend, 12 / group, DType::kBF16, kChunkSeqs, context, kChunkRows);
      std::printf("%-6lld %-6s %10.1f %9.1f\n", static_cast<long long>(group), KernelName(kernel),
                  r.seconds * 1e6, r.flops / r.seconds / 1e12);
    }
  }
  return 0;
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) { return mlkv::Main(argc, argv); }
