// Micro-benchmark of the CPU paged-attention kernel for one layer:
// - a decode step: batch x KV heads x context, reporting the bytes of K and V read per second
//   (for small groups the kernel's limit is memory bandwidth);
// - a prompt chunk: the last `rows` tokens of one sequence of `context` tokens, reporting
//   attention multiply-adds per second (the chunk rereads its sequence's cache, which stays in
//   the caches: its limit is arithmetic).
// Run: build/bench/attention_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

constexpr int64_t kNumHeads = 12, kHeadDim = 64, kBlockSize = 16;

// `num_seqs` sequences of `context` cached tokens whose last `rows_per_seq` tokens are the step's
// rows, every sequence's blocks spread over the pool as they are after a server has run a while.
class AttentionStep {
 public:
  AttentionStep(int64_t num_seqs, int64_t rows_per_seq, int64_t num_kv_heads, int64_t context,
                DType dtype)
      : backend_(CreateCpuBackend()) {
    const int64_t blocks_per_seq = (context + kBlockSize - 1) / kBlockSize;
    const int64_t num_blocks = num_seqs * blocks_per_seq;
    const size_t pool_bytes = num_blocks * kBlockSize * num_kv_heads * kHeadDim * DTypeBytes(dtype);
    k_ = *backend_->Allocate(pool_bytes);
    v_ = *backend_->Allocate(pool_bytes);
    std::vector<uint8_t> fill(pool_bytes);
    for (size_t i = 0; i < fill.size(); ++i) fill[i] = static_cast<uint8_t>((i * 37) % 61);
    backend_->CopyToDevice(k_->data(), fill.data(), pool_bytes);
    backend_->CopyToDevice(v_->data(), fill.data(), pool_bytes);
    cache_ = {k_->data(), v_->data(), dtype, num_blocks, kBlockSize, num_kv_heads, kHeadDim};
    const int64_t rows = num_seqs * rows_per_seq;
    for (int64_t s = 0; s < num_seqs; ++s) {
      for (int64_t r = 0; r < rows_per_seq; ++r) {
        positions_.push_back(static_cast<int32_t>(context - rows_per_seq + r));
      }
      query_start_.push_back(static_cast<int32_t>(s * rows_per_seq));
    }
    query_start_.push_back(static_cast<int32_t>(rows));
    context_lens_.assign(num_seqs, static_cast<int32_t>(context));
    block_tables_.resize(num_blocks);
    for (int64_t i = 0; i < num_blocks; ++i) {
      block_tables_[i] = static_cast<int32_t>((i % blocks_per_seq) * num_seqs + i / blocks_per_seq);
    }
    q_.assign(rows * kNumHeads * kHeadDim, 0.01f);
    out_.resize(q_.size());
    step_ = {rows,
             positions_.data(),
             nullptr,
             num_seqs,
             query_start_.data(),
             context_lens_.data(),
             block_tables_.data(),
             blocks_per_seq};
  }

  void Run() {
    const AttentionParams params{kNumHeads, 0.125f, false};
    backend_->PagedAttention(q_.data(), step_, cache_, RotaryView{}, params, out_.data());
    benchmark::DoNotOptimize(out_.data());
  }

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<DeviceBuffer> k_, v_;
  KvCacheView cache_{};
  std::vector<int32_t> positions_, query_start_, context_lens_, block_tables_;
  std::vector<float> q_, out_;
  StepBatchView step_{};
};

DType DTypeOfBits(int64_t bits) { return bits == 32 ? DType::kF32 : DType::kBF16; }

void BM_DecodeAttention(benchmark::State& state) {
  const int64_t batch = state.range(0), num_kv_heads = state.range(1), context = state.range(2);
  const DType dtype = DTypeOfBits(state.range(3));
  AttentionStep step(batch, 1, num_kv_heads, context, dtype);
  for (auto _ : state) step.Run();
  state.SetBytesProcessed(state.iterations() * 2 * batch * context * num_kv_heads * kHeadDim *
                          DTypeBytes(dtype));
}

// {batch, KV heads, context, dtype bits}: MHA (12 KV heads), GQA-style groups of 4 (3 KV heads)
// and MQA/MLKV (1 KV head, groups of 12) at batch 1 and 128.
BENCHMARK(BM_DecodeAttention)
    ->Args({1, 12, 512, 32})
    ->Args({128, 12, 512, 32})
    ->Args({128, 3, 512, 32})
    ->Args({128, 1, 512, 32})
    ->Args({128, 12, 512, 16})
    ->Args({128, 1, 512, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_PromptChunkAttention(benchmark::State& state) {
  const int64_t rows = state.range(0), num_kv_heads = state.range(1), context = state.range(2);
  AttentionStep step(1, rows, num_kv_heads, context, DTypeOfBits(state.range(3)));
  for (auto _ : state) step.Run();
  // Row r attends to context - rows + r + 1 tokens: scores and weighted values, d each per head.
  const int64_t attended = rows * (context - rows) + rows * (rows + 1) / 2;
  state.counters["madds"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2 * attended * kNumHeads * kHeadDim,
      benchmark::Counter::kIsRate);
}

// {rows, KV heads, context, dtype bits}: the last 512-token chunk of a 2,048-token prompt.
BENCHMARK(BM_PromptChunkAttention)
    ->Args({512, 12, 2048, 32})
    ->Args({512, 1, 2048, 32})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace mlkv

BENCHMARK_MAIN();
