// Micro-benchmark of the CPU paged-attention kernel for one layer's decode step: batch x KV heads
// x context, reporting the bytes of K and V read per second (the kernel's limit is memory
// bandwidth). Run: build/bench/attention_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

void BM_DecodeAttention(benchmark::State& state) {
  const int64_t batch = state.range(0), num_kv_heads = state.range(1), context = state.range(2);
  const int64_t num_heads = 12, head_dim = 64, block_size = 16;
  const DType dtype = state.range(3) == 32 ? DType::kF32 : DType::kBF16;
  auto backend = CreateCpuBackend();
  const int64_t blocks_per_seq = (context + block_size - 1) / block_size;
  const int64_t num_blocks = batch * blocks_per_seq;
  const size_t pool_bytes = num_blocks * block_size * num_kv_heads * head_dim * DTypeBytes(dtype);
  auto k = *backend->Allocate(pool_bytes), v = *backend->Allocate(pool_bytes);
  std::vector<uint8_t> fill(pool_bytes);
  for (size_t i = 0; i < fill.size(); ++i) fill[i] = static_cast<uint8_t>((i * 37) % 61);
  backend->CopyToDevice(k->data(), fill.data(), pool_bytes);
  backend->CopyToDevice(v->data(), fill.data(), pool_bytes);
  const KvCacheView cache{k->data(), v->data(), dtype, num_blocks, block_size, num_kv_heads, head_dim};
  std::vector<int32_t> positions(batch, static_cast<int32_t>(context - 1)), query_start(batch + 1),
      context_lens(batch, static_cast<int32_t>(context)), block_tables(num_blocks);
  for (int64_t i = 0; i <= batch; ++i) query_start[i] = static_cast<int32_t>(i);
  // Each sequence's blocks are spread over the pool, as they are after a server has run a while.
  for (int64_t i = 0; i < num_blocks; ++i) {
    block_tables[i] = static_cast<int32_t>((i % blocks_per_seq) * batch + i / blocks_per_seq);
  }
  std::vector<float> q(batch * num_heads * head_dim, 0.01f), out(q.size());
  const StepBatchView step{batch, positions.data(), nullptr, batch, query_start.data(),
                           context_lens.data(), block_tables.data(), blocks_per_seq};
  const AttentionParams params{num_heads, 0.125f, false};
  for (auto _ : state) {
    backend->PagedAttention(q.data(), step, cache, RotaryView{}, params, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * batch * context * num_kv_heads * head_dim *
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

}  // namespace
}  // namespace mlkv

BENCHMARK_MAIN();
