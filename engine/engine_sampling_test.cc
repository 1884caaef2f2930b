// Sampling on the backend (SamplingPlacement, Backend::SampleRows) through the engine: which
// requests draw there, and that their draws depend only on their seed and their own logits.
// The draw itself is tested against its definition in kernels/cpu/sample_rows_test.cc.
#include <memory>
#include <vector>

#include "engine/testing/counting_backend.h"
#include "engine/testing/engine_setup.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using testing::CountingBackend;
using testing::EngineSetup;
using testing::MakeEngine;
using testing::OptionsOf;
using testing::Prompt;
using testing::SmallConfig;

// A sampled request that needs nothing but the logits: no penalties, no logprobs.
EngineRequest Sampled(int i, int max_tokens, std::shared_ptr<CollectingObserver> observer) {
  EngineRequest r;
  r.prompt_token_ids = Prompt(7 + 3 * i, i);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.sampling.temperature = 0.9f;
  r.sampling.top_p = 0.95f;
  r.sampling.seed = 100 + i;
  r.observer = std::move(observer);
  return r;
}

std::vector<int32_t> RunAlone(Engine& engine, EngineRequest request) {
  auto observer = std::make_shared<CollectingObserver>();
  request.observer = observer;
  EXPECT_TRUE(engine.Submit(std::move(request)).ok());
  const RequestResult result = observer->Wait();
  EXPECT_TRUE(result.status.ok()) << result.status;
  return result.output_token_ids;
}

// Each draw depends on the request's seed, its position in the request's stream and its own row
// of logits: alone, batched with others, or preempted and recomputed under a cache too small for
// all of them at once, a request draws the same tokens; and the same seed repeats them.
TEST(EngineSamplingTest, BackendDrawsAreTheSameAloneBatchedAndPreempted) {
  constexpr int kRequests = 6, kTokens = 40;
  EngineSetup setup;
  setup.sampling_placement = SamplingPlacement::kBackend;
  const ModelConfig config = SmallConfig(2, 3, "unrotated");
  std::vector<std::vector<int32_t>> alone;
  {
    auto engine = MakeEngine(config, setup);
    for (int i = 0; i < kRequests; ++i) {
      alone.push_back(RunAlone(*engine, Sampled(i, kTokens, nullptr)));
      ASSERT_EQ(alone.back().size(), static_cast<size_t>(kTokens));
    }
    EXPECT_EQ(RunAlone(*engine, Sampled(0, kTokens, nullptr)), alone[0]);
    EXPECT_NE(alone[0], alone[1]);
  }
  // 12 blocks of 16 tokens hold three of the six 50-odd-token sequences: the others wait or are
  // preempted and recomputed, their draws continuing from their output length.
  setup.num_blocks = 12;
  auto engine = MakeEngine(config, setup);
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < kRequests; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    ASSERT_TRUE(engine->Submit(Sampled(i, kTokens, observers.back())).ok());
  }
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(observers[i]->Wait().output_token_ids, alone[i]) << "request " << i;
  }
  EXPECT_GT(engine->GetStats().scheduler.num_preemptions, 0) << "the cache was meant to be short";
}

// top_k = 1 keeps only the most likely token, whatever the temperature: greedy decoding.
TEST(EngineSamplingTest, BackendTopKOneIsGreedy) {
  EngineSetup setup;
  setup.sampling_placement = SamplingPlacement::kBackend;
  auto engine = MakeEngine(SmallConfig(1, 2, "rotated"), setup);
  EngineRequest top1 = Sampled(2, 16, nullptr);
  top1.sampling.top_k = 1;
  top1.sampling.top_p = 1.0f;
  EngineRequest greedy = Sampled(2, 16, nullptr);
  greedy.sampling.temperature = 0.0f;
  EXPECT_EQ(RunAlone(*engine, top1), RunAlone(*engine, greedy));
}

// Which requests draw on the backend: with kBackend every sampled request that needs only the
// logits; never one with a penalty or logprobs (those need the host sampler), never a greedy one
// (ArgmaxRows), and nothing with kHost or, on the CPU backend, kAuto.
TEST(EngineSamplingTest, OnlyRequestsThatNeedNothingButLogitsDrawOnTheBackend) {
  const ModelConfig config = SmallConfig(2, 3, "unrotated");
  auto sampled_rows = [&](SamplingPlacement placement, auto change) {
    auto backend = std::make_unique<CountingBackend>(CreateCpuBackend());
    CountingBackend* counting = backend.get();
    EngineSetup setup;
    setup.sampling_placement = placement;
    auto engine = MakeEngine(config, OptionsOf(setup), /*weight_seed=*/11, std::move(backend));
    EngineRequest request = Sampled(1, 5, nullptr);
    change(request);
    EXPECT_EQ(RunAlone(*engine, std::move(request)).size(), 5u);
    return counting->sampled_rows();
  };
  const auto plain = [](EngineRequest&) {};
  EXPECT_EQ(sampled_rows(SamplingPlacement::kBackend, plain), 5);
  EXPECT_EQ(sampled_rows(SamplingPlacement::kHost, plain), 0);
  EXPECT_EQ(sampled_rows(SamplingPlacement::kAuto, plain), 0);  // the CPU backend
  EXPECT_EQ(sampled_rows(SamplingPlacement::kBackend,
                         [](EngineRequest& r) { r.sampling.presence_penalty = 0.5f; }),
            0);
  EXPECT_EQ(sampled_rows(SamplingPlacement::kBackend,
                         [](EngineRequest& r) { r.sampling.repetition_penalty = 1.2f; }),
            0);
  EXPECT_EQ(sampled_rows(SamplingPlacement::kBackend, [](EngineRequest& r) { r.top_logprobs = 0; }),
            0);
  EXPECT_EQ(sampled_rows(SamplingPlacement::kBackend,
                         [](EngineRequest& r) { r.sampling.temperature = 0.0f; }),
            0);
}

}  // namespace
}  // namespace mlkv
