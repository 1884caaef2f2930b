// Host work per sampled token over a Pythia-sized vocabulary (50,304 logits): what the engine
// thread spends between model steps, once per decoding sequence, and so what bounds a GPU step's
// throughput when the model itself is fast. Run: build/bench/sampler_bench
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/log_softmax.h"
#include "engine/sampler.h"

namespace mlkv {
namespace {

constexpr int kVocab = 50304;

std::vector<float> Logits() {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = normal(rng);
  return logits;
}

// The sampled token's logprob: one pass over the vocabulary.
void BM_LogProbability(benchmark::State& state) {
  const std::vector<float> logits = Logits();
  int32_t token = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(LogProbability(logits, token));
    token = (token + 7919) % kVocab;
  }
}
BENCHMARK(BM_LogProbability);

// A draw with temperature and the given top_k / top_p, the row copied first as the engine does.
void BM_Sample(benchmark::State& state) {
  const std::vector<float> logits = Logits();
  SamplingParams params;
  params.temperature = state.range(0) == 0 ? 0.0f : 0.8f;
  params.top_k = static_cast<int32_t>(state.range(1));
  params.top_p = static_cast<float>(state.range(2)) / 100.0f;
  SequenceSampler sampler(params, 7);
  std::vector<float> scratch;
  for (auto _ : state) {
    scratch = logits;
    benchmark::DoNotOptimize(sampler.Sample(scratch, {}, {}));
  }
}
// {temperature > 0, top_k, top_p %}: greedy; plain temperature; top-k 50; top-p 0.9.
BENCHMARK(BM_Sample)->Args({0, 0, 100})->Args({1, 0, 100})->Args({1, 50, 100})->Args({1, 0, 90});

}  // namespace
}  // namespace mlkv

BENCHMARK_MAIN();
