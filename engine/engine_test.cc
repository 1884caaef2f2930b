// The engine loop on a small random model: results do not depend on batching, chunking, prefix
// reuse, preemption or block size; aborts, bad requests, a full queue and shutdown each end the
// right requests with the right status while the others go on. (Text and monitoring:
// engine_text_test.cc.)
#include "engine/engine.h"

#include <thread>

#include "engine/testing/engine_setup.h"
#include "engine/testing/recording_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using testing::EngineSetup;
using testing::GatedObserver;
using testing::Greedy;
using ::testing::HasSubstr;
using testing::MakeEngine;
using testing::OptionsOf;
using testing::Prompt;
using testing::RecordingBackend;
using testing::SmallConfig;

struct Outcome {
  RequestResult result;
  std::vector<float> logprobs;
};

// Runs `prompts` concurrently (submitted from two threads) and returns their outcomes. The engine
// is held at the first prompt's first tokens until every prompt is submitted, so that all of
// them compete for the blocks however fast the engine runs.
std::vector<Outcome> RunAll(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                            int max_tokens) {
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (size_t i = 0; i < prompts.size(); ++i)
    observers.push_back(std::make_shared<CollectingObserver>());
  auto gate = std::make_shared<GatedObserver>(observers[0]);
  auto submit_range = [&](size_t begin, size_t step) {
    for (size_t i = begin; i < prompts.size(); i += step) {
      EngineRequest request = Greedy(prompts[i], max_tokens, observers[i]);
      if (i == 0) request.observer = gate;
      auto id = engine.Submit(std::move(request));
      EXPECT_TRUE(id.ok()) << id.status();
    }
  };
  std::thread other(submit_range, 1, 2);
  submit_range(0, 2);
  other.join();
  gate->Open();
  std::vector<Outcome> outcomes;
  for (auto& o : observers) {
    Outcome outcome{o->Wait(), {}};
    for (const TokenLogprob& lp : o->logprobs()) outcome.logprobs.push_back(lp.logprob);
    EXPECT_EQ(o->token_ids(), outcome.result.output_token_ids);
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

void ExpectSameOutcome(const Outcome& a, const Outcome& b, const std::string& what) {
  ASSERT_TRUE(a.result.status.ok()) << what << ": " << a.result.status;
  ASSERT_TRUE(b.result.status.ok()) << what << ": " << b.result.status;
  EXPECT_EQ(a.result.output_token_ids, b.result.output_token_ids) << what;
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size()) << what;
  for (size_t i = 0; i < a.logprobs.size(); ++i)
    EXPECT_NEAR(a.logprobs[i], b.logprobs[i], 1e-5) << what;
  ASSERT_EQ(a.result.prompt_logprobs.size(), b.result.prompt_logprobs.size()) << what;
  for (size_t i = 0; i < a.result.prompt_logprobs.size(); ++i) {
    EXPECT_NEAR(a.result.prompt_logprobs[i], b.result.prompt_logprobs[i], 1e-5) << what;
  }
}

class EngineInvarianceTest : public ::testing::TestWithParam<const char*> {};

// Each request's tokens and log-probabilities equal those of running it alone, whether it runs
// batched with others, in prompt chunks, with shared prefixes from the cache, after preemption
// for lack of blocks, or with other block sizes.
TEST_P(EngineInvarianceTest, BatchingChunkingPrefixReuseAndPreemptionChangeNothing) {
  const ModelConfig config = SmallConfig(2, 3, GetParam());
  std::vector<std::vector<int32_t>> prompts;
  const std::vector<int32_t> shared = Prompt(40, 9);  // a common prefix of 2.5 blocks
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> p = i % 2 == 0 ? shared : std::vector<int32_t>();
    const auto tail = Prompt(5 + 9 * i, i);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
  }
  std::vector<Outcome> alone;
  {
    auto engine = MakeEngine(config, {});
    for (const auto& p : prompts) alone.push_back(RunAll(*engine, {p}, 20)[0]);
  }
  EngineSetup tight;  // 8 requests of up to ~130 tokens in 24 blocks of 16: preemption
  tight.num_blocks = 24;
  tight.max_num_batched_tokens = 32;
  tight.prefix_caching = true;
  auto engine = MakeEngine(config, tight);
  auto batched = RunAll(*engine, prompts, 20);
  for (size_t i = 0; i < prompts.size(); ++i) {
    ExpectSameOutcome(alone[i], batched[i], "tight budget, request " + std::to_string(i));
  }
  const EngineStats stats = engine->GetStats();
  EXPECT_GT(stats.scheduler.num_preemptions, 0) << "the budget was meant to force preemption";
  EXPECT_EQ(stats.scheduler.kv.num_used_blocks, 0);

  for (int32_t block_size : {1, 32}) {
    EngineSetup other;
    other.block_size = block_size;
    other.num_blocks = 4096 / block_size;
    auto e = MakeEngine(config, other);
    auto results = RunAll(*e, prompts, 20);
    for (size_t i = 0; i < prompts.size(); ++i) {
      ExpectSameOutcome(alone[i], results[i], "block size " + std::to_string(block_size));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SharingModes, EngineInvarianceTest,
                         ::testing::Values("unrotated", "rotated"));

TEST(EngineTest, PrefixCacheServesSharedPromptsWithoutPromptLogprobs) {
  auto engine = MakeEngine(SmallConfig(1, 2, "unrotated"), {});
  const auto prompt = Prompt(48, 3);
  RequestResult first, second;
  for (RequestResult* result : {&first, &second}) {
    auto observer = std::make_shared<CollectingObserver>();
    EngineRequest r = Greedy(prompt, 4, observer);
    r.prompt_logprobs = false;
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
    *result = observer->Wait();
  }
  EXPECT_EQ(first.num_cached_prompt_tokens, 0);
  EXPECT_EQ(second.num_cached_prompt_tokens, 32);  // two full blocks; the last token is computed
  EXPECT_EQ(first.output_token_ids, second.output_token_ids);
}

// Plain greedy requests without logprobs take their token from the backend's argmax, the others
// from the host sampler over copied logits; batched together, both give the same tokens.
TEST(EngineTest, BackendArgmaxAndHostSamplerPickTheSameGreedyTokens) {
  auto engine = MakeEngine(SmallConfig(2, 3, "unrotated"), {});
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < 8; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    EngineRequest r = Greedy(Prompt(6 + 5 * (i / 2), i / 2), 12, observers.back());
    if (i % 2 == 0) {  // the argmax path: no logprobs of any kind
      r.top_logprobs.reset();
      r.prompt_logprobs = false;
    }
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  for (int i = 0; i < 8; i += 2) {
    const RequestResult on_backend = observers[i]->Wait();
    const RequestResult on_host = observers[i + 1]->Wait();
    ASSERT_TRUE(on_backend.status.ok()) << on_backend.status;
    EXPECT_EQ(on_backend.output_token_ids, on_host.output_token_ids) << "prompt " << i / 2;
    EXPECT_TRUE(observers[i]->logprobs().empty());
    EXPECT_EQ(observers[i + 1]->logprobs().size(), 12u);
  }
}

// Decode graphs give every request the tokens it gets without them, greedy and sampled on the
// backend alike, while requests come and go so that the batch size moves between buckets: run
// padded and eagerly on the CPU backend, and captured and replayed through a recording backend.
TEST(EngineTest, DecodeGraphsChangeNoTokens) {
  auto run = [](bool graphs, bool record) {
    EngineSetup setup;
    setup.decode_graphs = graphs;
    setup.sampling_placement = SamplingPlacement::kBackend;
    std::unique_ptr<Backend> backend = CreateCpuBackend();
    if (record) backend = std::make_unique<RecordingBackend>(std::move(backend));
    auto engine = MakeEngine(SmallConfig(1, 2, "unrotated"), OptionsOf(setup), /*weight_seed=*/11,
                             std::move(backend));
    std::vector<std::shared_ptr<CollectingObserver>> observers;
    for (int i = 0; i < 7; ++i) {
      observers.push_back(std::make_shared<CollectingObserver>());
      EngineRequest r = Greedy(Prompt(5 + 3 * i, i), 6 + 5 * i, observers.back());
      r.top_logprobs.reset();
      r.prompt_logprobs = false;
      if (i % 2 == 1) {
        r.sampling.temperature = 0.8f;
        r.sampling.seed = i;
      }
      EXPECT_TRUE(engine->Submit(std::move(r)).ok());
    }
    std::vector<std::vector<int32_t>> outputs;
    for (auto& observer : observers) outputs.push_back(observer->Wait().output_token_ids);
    return outputs;
  };
  const auto eager = run(false, false);
  const auto padded = run(true, false);
  const auto replayed = run(true, true);
  for (size_t i = 0; i < eager.size(); ++i) {
    EXPECT_EQ(padded[i], eager[i]) << "request " << i;
    EXPECT_EQ(replayed[i], eager[i]) << "request " << i;
    EXPECT_EQ(eager[i].size(), 6 + 5 * i);
  }
}

// Seeded sampling: each request draws from its own stream, so requests sampled together (in
// parallel on the engine thread's OpenMP team) give the tokens each gives alone.
TEST(EngineTest, SeededSamplingIsTheSameBatchedAndAlone) {
  auto sampled = [](int i, std::shared_ptr<CollectingObserver> observer) {
    EngineRequest r = Greedy(Prompt(7 + 3 * i, i), 12, std::move(observer));
    r.sampling.temperature = 1.0f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = 100 + i;
    return r;
  };
  constexpr int kRequests = 6;
  std::vector<std::vector<int32_t>> alone;
  {
    auto engine = MakeEngine(SmallConfig(2, 3, "unrotated"), {});
    for (int i = 0; i < kRequests; ++i) {
      auto observer = std::make_shared<CollectingObserver>();
      ASSERT_TRUE(engine->Submit(sampled(i, observer)).ok());
      alone.push_back(observer->Wait().output_token_ids);
    }
  }
  auto engine = MakeEngine(SmallConfig(2, 3, "unrotated"), {});
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < kRequests; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    ASSERT_TRUE(engine->Submit(sampled(i, observers.back())).ok());
  }
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(observers[i]->Wait().output_token_ids, alone[i]) << "request " << i;
    EXPECT_EQ(alone[i].size(), 12u);
  }
}

TEST(EngineTest, TopLogprobsAreSortedAndContainTheGreedyToken) {
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), {});
  auto observer = std::make_shared<CollectingObserver>();
  EngineRequest r = Greedy(Prompt(10, 1), 5, observer);
  r.top_logprobs = 3;
  ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  observer->Wait();
  const auto logprobs = observer->logprobs();
  ASSERT_EQ(logprobs.size(), 5u);
  for (const TokenLogprob& lp : logprobs) {
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_EQ(lp.top[0].first, lp.token_id);  // greedy picks the most likely token
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    EXPECT_GE(lp.top[0].second, lp.top[1].second);
    EXPECT_GE(lp.top[1].second, lp.top[2].second);
  }
}

TEST(EngineTest, AbortEndsTheRequestAndFreesItsBlocks) {
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), {});
  auto long_one = std::make_shared<CollectingObserver>();
  auto gate = std::make_shared<GatedObserver>(long_one);
  EngineRequest request = Greedy(Prompt(20, 1), 200, long_one);
  request.observer = gate;
  auto id = engine->Submit(std::move(request));
  ASSERT_TRUE(id.ok());
  gate->WaitUntilReached();
  ASSERT_TRUE(engine->Abort(*id).ok());
  gate->Open();
  const RequestResult result = long_one->Wait();
  EXPECT_EQ(result.finish_reason, FinishReason::kAbort);
  EXPECT_LT(result.output_token_ids.size(), 200u);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(engine->GetStats().scheduler.kv.num_used_blocks, 0);
  EXPECT_EQ(engine->Abort(*id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->Abort("never-submitted").code(), absl::StatusCode::kNotFound);
}

TEST(EngineTest, BadRequestsAreRefusedAndOthersKeepRunning) {
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), {});
  auto good = std::make_shared<CollectingObserver>();
  ASSERT_TRUE(engine->Submit(Greedy(Prompt(10, 1), 30, good)).ok());
  auto refuse = [&](EngineRequest r, const std::string& field) {
    auto id = engine->Submit(std::move(r));
    ASSERT_FALSE(id.ok()) << field;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(field));
  };
  auto sink = std::make_shared<CollectingObserver>();
  refuse(Greedy({}, 5, sink), "prompt");
  refuse(Greedy({1, 97}, 5, sink), "prompt");
  refuse(Greedy({1, -1}, 5, sink), "prompt");
  refuse(Greedy(Prompt(5, 1), 0, sink), "max_tokens");
  refuse(Greedy(Prompt(250, 1), 10, sink), "maximum model length");
  EngineRequest bad_top_p = Greedy(Prompt(5, 1), 5, sink);
  bad_top_p.sampling.top_p = 2.0f;
  refuse(bad_top_p, "top_p");
  EngineRequest bad_logprobs = Greedy(Prompt(5, 1), 5, sink);
  bad_logprobs.top_logprobs = 1000;
  refuse(bad_logprobs, "logprobs");
  EngineRequest bad_stop = Greedy(Prompt(5, 1), 5, sink);
  bad_stop.stop_token_ids = {500};
  refuse(bad_stop, "stop_token_ids");
  refuse(Greedy(Prompt(5, 1), 5, nullptr), "observer");
  EngineRequest duplicate = Greedy(Prompt(5, 1), 5, sink);
  duplicate.request_id = "dup";
  EngineRequest duplicate_again = duplicate;
  duplicate.max_tokens = 100;
  ASSERT_TRUE(engine->Submit(std::move(duplicate)).ok());
  EXPECT_EQ(engine->Submit(std::move(duplicate_again)).status().code(),
            absl::StatusCode::kAlreadyExists);
  const RequestResult result = good->Wait();
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.output_token_ids.size(), 30u);
  EXPECT_EQ(result.finish_reason, FinishReason::kLength);
}

TEST(EngineTest, RequestThatCanNeverFitEndsWithAnError) {
  EngineSetup small;
  small.num_blocks = 4;  // 64 tokens
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), small);
  auto observer = std::make_shared<CollectingObserver>();
  ASSERT_TRUE(engine->Submit(Greedy(Prompt(60, 1), 30, observer)).ok());
  const RequestResult result = observer->Wait();
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument) << result.status;
  EXPECT_EQ(result.finish_reason, FinishReason::kError);
}

TEST(EngineTest, FullQueueAndShutdownRefuseNewRequests) {
  EngineSetup setup;
  setup.max_waiting = 2;
  setup.max_num_seqs = 1;
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), setup);
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  int refused = 0;
  for (int i = 0; i < 12; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    auto id = engine->Submit(Greedy(Prompt(8, i), 40, observers.back()));
    if (!id.ok()) {
      EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted);
      observers.pop_back();
      ++refused;
    }
  }
  engine->StopAccepting();
  auto late = std::make_shared<CollectingObserver>();
  EXPECT_EQ(engine->Submit(Greedy(Prompt(8, 1), 4, late)).status().code(),
            absl::StatusCode::kUnavailable);
  engine->Shutdown();  // aborts what is left
  for (auto& o : observers) {
    const RequestResult r = o->Wait();
    // Submit reads the queue's length as the engine thread last published it, so a request it
    // accepts can still find the queue full when the engine thread takes it in: it then ends
    // with the same RESOURCE_EXHAUSTED a refused Submit returns.
    if (r.finish_reason == FinishReason::kError) {
      EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted) << r.status;
      ++refused;
    } else {
      EXPECT_TRUE(r.finish_reason == FinishReason::kLength ||
                  r.finish_reason == FinishReason::kAbort)
          << FinishReasonName(r.finish_reason);
    }
  }
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace mlkv
