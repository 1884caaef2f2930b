// The small engine the engine tests run: a 5-layer random model on the CPU backend, a scheduler
// configured per test, and greedy requests that report every logprob.
#ifndef MLKV_ENGINE_TESTING_ENGINE_SETUP_H_
#define MLKV_ENGINE_TESTING_ENGINE_SETUP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/collecting_observer.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/random_model.h"

namespace mlkv::testing {

inline ModelConfig SmallConfig(int kv_heads, int kv_layers, const char* sharing_rope) {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 5},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.5},
                                       {"num_key_value_heads", kv_heads},
                                       {"num_key_value_layers", kv_layers},
                                       {"kv_sharing_rope", sharing_rope},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

struct EngineSetup {
  int32_t block_size = 16;
  int32_t num_blocks = 256;
  int32_t max_num_batched_tokens = 512;
  int32_t max_num_seqs = 64;
  int32_t max_waiting = 1000;
  bool prefix_caching = true;
  DType kv_dtype = DType::kF32;
  SamplingPlacement sampling_placement = SamplingPlacement::kAuto;
  bool decode_graphs = false;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<EngineMonitor> monitor;
};

// An engine over a random model of `config`, its weights drawn from `weight_seed`, on `backend`.
inline std::unique_ptr<Engine> MakeEngine(const ModelConfig& config, const EngineOptions& options,
                                          uint64_t weight_seed, std::unique_ptr<Backend> backend) {
  auto model = Model::Create(config, RandomModelWeights(config, weight_seed), backend.get());
  EXPECT_TRUE(model.ok()) << model.status();
  auto engine = Engine::Create(options, std::move(backend), std::move(*model));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

// The same on a CPU backend of `threads` threads (0: OpenMP's default).
inline std::unique_ptr<Engine> MakeEngine(const ModelConfig& config, const EngineOptions& options,
                                          uint64_t weight_seed, int threads = 0) {
  return MakeEngine(config, options, weight_seed, CreateCpuBackend(threads));
}

// The engine options of `setup`.
inline EngineOptions OptionsOf(const EngineSetup& setup) {
  EngineOptions options;
  options.scheduler.block_size = setup.block_size;
  options.scheduler.num_blocks = setup.num_blocks;
  options.scheduler.max_num_batched_tokens = setup.max_num_batched_tokens;
  options.scheduler.max_num_seqs = setup.max_num_seqs;
  options.scheduler.max_model_len = 256;
  options.scheduler.max_waiting = setup.max_waiting;
  options.scheduler.enable_prefix_caching = setup.prefix_caching;
  options.kv_dtype = setup.kv_dtype;
  options.sampling_placement = setup.sampling_placement;
  options.decode_graphs = setup.decode_graphs;
  options.tokenizer = setup.tokenizer;
  options.monitor = setup.monitor;
  return options;
}

inline std::unique_ptr<Engine> MakeEngine(const ModelConfig& config, const EngineSetup& setup) {
  return MakeEngine(config, OptionsOf(setup), /*weight_seed=*/11);
}

inline std::vector<int32_t> Prompt(int n, int salt) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < n; ++i) prompt.push_back(1 + (i * 31 + salt * 17) % 96);
  return prompt;
}

inline EngineRequest Greedy(std::vector<int32_t> prompt, int max_tokens,
                            std::shared_ptr<CollectingObserver> observer) {
  EngineRequest r;
  r.prompt_token_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  r.top_logprobs = 0;
  r.prompt_logprobs = true;
  r.observer = std::move(observer);
  return r;
}

// Forwards to `inner`, but holds the engine thread at its request's first tokens until Open().
// A test then acts (submits, aborts) while the engine is known to be inside that request, however
// fast the engine runs and however the test thread is scheduled.
class GatedObserver final : public RequestObserver {
 public:
  explicit GatedObserver(std::shared_ptr<RequestObserver> inner) : inner_(std::move(inner)) {}

  void OnTokens(const TokenDelta& delta) override {
    {
      absl::MutexLock lock(&mu_);
      reached_ = true;
      mu_.Await(absl::Condition(&open_));
    }
    inner_->OnTokens(delta);
  }
  void OnFinished(const RequestResult& result) override { inner_->OnFinished(result); }

  // Returns once the engine thread is held at the request's first tokens.
  void WaitUntilReached() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&reached_));
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }

 private:
  const std::shared_ptr<RequestObserver> inner_;
  absl::Mutex mu_;
  bool reached_ ABSL_GUARDED_BY(mu_) = false;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mlkv::testing

#endif  // MLKV_ENGINE_TESTING_ENGINE_SETUP_H_
