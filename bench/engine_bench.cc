// End-to-end throughput of the engine loop on the CPU: a fixed set of requests with mixed prompt
// and output lengths, all submitted at once, at one KV budget; reports requests/s, tokens/s,
// preemptions and the concurrency reached. Run the MHA/MQA/MLKV variants of a config at the same
// budget to see what per-group KV blocks buy (bench/run_engine_bench.sh does).
//
//   engine_bench --config FILE --kv-cache-bytes B [--num-requests 64] [--prompt-len 128:512]
//                [--output-len 64:256] [--shared-prefix-len 0] [--no-prefix-caching] [--seed 0]
#include <chrono>
#include <cstdio>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cli/flags.h"
#include "engine/collecting_observer.h"
#include "engine/engine.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/random_model.h"
#include "planning/kv_capacity.h"

namespace mlkv {
namespace {

struct Range {
  int64_t min, max;
};

absl::StatusOr<Range> ParseRange(const cli::Flags& flags, const std::string& name, Range fallback) {
  if (!flags.Has(name)) return fallback;
  std::vector<std::string> parts = absl::StrSplit(flags.String(name, ""), ':');
  Range r{0, 0};
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &r.min) ||
      !absl::SimpleAtoi(parts[1], &r.max) || r.min < 1 || r.max < r.min) {
    return absl::InvalidArgumentError("--" + name + ": expected MIN:MAX with 1 <= MIN <= MAX");
  }
  return r;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "engine_bench: %s\n", std::string(status.message()).c_str());
  return 2;
}

int Main(int argc, char** argv) {
  auto flags =
      cli::Flags::Parse(std::vector<std::string>(argv + 1, argv + argc),
                        {"config", "kv-cache-bytes", "num-requests", "prompt-len", "output-len",
                         "shared-prefix-len", "seed", "max-num-batched-tokens"},
                        {"no-prefix-caching"});
  if (!flags.ok()) return Fail(flags.status());
  if (cli::PrintUsageIfAsked(*flags, "engine_bench")) return 0;
  auto config = ModelConfig::FromFile(flags->String("config", "configs/pythia-160m-mha-144.json"));
  auto kv_bytes = flags->Int("kv-cache-bytes", 256 << 20, 1, int64_t{1} << 40);
  auto num_requests = flags->Int("num-requests", 64, 1, 100000);
  auto prompt_len = ParseRange(*flags, "prompt-len", {128, 512});
  auto output_len = ParseRange(*flags, "output-len", {64, 256});
  auto prefix_len = flags->Int("shared-prefix-len", 0, 0, 100000);
  auto seed = flags->Int("seed", 0, 0, 1 << 30);
  auto batched = flags->Int("max-num-batched-tokens", 512, 1, 1 << 20);
  for (const absl::Status& s :
       {config.status(), kv_bytes.status(), num_requests.status(), prompt_len.status(),
        output_len.status(), prefix_len.status(), seed.status(), batched.status()}) {
    if (!s.ok()) return Fail(s);
  }
  const int64_t max_model_len = *prefix_len + prompt_len->max + output_len->max;
  KvBudget budget;
  budget.kv_cache_bytes = *kv_bytes;
  auto capacity = PlanKvCapacity(*config, DType::kF32, 16, max_model_len, budget);
  if (!capacity.ok()) return Fail(capacity.status());

  auto backend = CreateCpuBackend();
  auto model = Model::Create(*config, RandomModelWeights(*config, 0), backend.get());
  if (!model.ok()) return Fail(model.status());
  EngineOptions options;
  options.scheduler.block_size = 16;
  options.scheduler.num_blocks = static_cast<int32_t>(capacity->num_blocks);
  options.scheduler.max_model_len = static_cast<int32_t>(max_model_len);
  options.scheduler.max_num_batched_tokens = static_cast<int32_t>(*batched);
  options.scheduler.enable_prefix_caching = !flags->Switch("no-prefix-caching");
  auto engine = Engine::Create(options, std::move(backend), std::move(*model));
  if (!engine.ok()) return Fail(engine.status());

  // The workload: uniform lengths, token ids drawn from the vocabulary, an optional prefix
  // shared by every request (a system prompt).
  std::mt19937_64 rng(*seed);
  auto uniform = [&](Range r) { return std::uniform_int_distribution<int64_t>(r.min, r.max)(rng); };
  std::uniform_int_distribution<int32_t> token(1, static_cast<int32_t>(config->vocab_size - 1));
  std::vector<int32_t> prefix(*prefix_len);
  for (int32_t& t : prefix) t = token(rng);
  std::vector<EngineRequest> requests(*num_requests);
  int64_t prompt_tokens = 0, output_tokens = 0;
  for (EngineRequest& r : requests) {
    r.prompt_token_ids = prefix;
    for (int64_t i = uniform(*prompt_len); i > 0; --i) r.prompt_token_ids.push_back(token(rng));
    r.max_tokens = static_cast<int32_t>(uniform(*output_len));
    r.ignore_eos = true;  // exact output lengths
    r.sampling.temperature = 0.0f;
    prompt_tokens += static_cast<int64_t>(r.prompt_token_ids.size());
    output_tokens += r.max_tokens;
  }
  std::printf("%s: %s\n", flags->String("config", "").c_str(),
              DescribeKvCapacity(*capacity).c_str());
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  const auto start = std::chrono::steady_clock::now();
  for (EngineRequest& r : requests) {
    r.observer = observers.emplace_back(std::make_shared<CollectingObserver>());
    auto id = (*engine)->Submit(std::move(r));
    if (!id.ok()) return Fail(id.status());
  }
  int32_t peak_running = 0;
  while (!(*engine)->WaitIdle(absl::Milliseconds(50))) {
    peak_running = std::max(peak_running, (*engine)->GetStats().scheduler.num_running);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t cached = 0;
  for (auto& o : observers) {
    const RequestResult r = o->Wait();
    if (!r.status.ok()) return Fail(r.status);
    cached += r.num_cached_prompt_tokens;
  }
  const EngineStats stats = (*engine)->GetStats();
  std::printf("requests %lld in %.1f s: %.3f req/s, %.1f output tok/s, %.1f total tok/s\n",
              static_cast<long long>(requests.size()), seconds, requests.size() / seconds,
              output_tokens / seconds, (prompt_tokens + output_tokens) / seconds);
  std::printf(
      "prompt tokens %lld (%lld from the prefix cache), output tokens %lld, "
      "preemptions %lld, peak running %d, steps %lld\n",
      static_cast<long long>(prompt_tokens), static_cast<long long>(cached),
      static_cast<long long>(output_tokens),
      static_cast<long long>(stats.scheduler.num_preemptions), peak_running,
      static_cast<long long>(stats.num_steps));
  return 0;
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) { return mlkv::Main(argc, argv); }
