// The engine loop on a small random model: results do not depend on batching, chunking, prefix
// reuse, preemption or block size; aborts, bad requests, a full queue and shutdown each end the
// right requests with the right status while the others go on. With a tokenizer: text prompts,
// text deltas and stop strings; a monitor sees every request's tokens and end.
#include "engine/engine.h"

#include <thread>

#include "absl/synchronization/mutex.h"

#include "engine/collecting_observer.h"
#include "engine/random_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

using ::testing::HasSubstr;

ModelConfig SmallConfig(int kv_heads, int kv_layers, const char* sharing_rope) {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 5},  {"intermediate_size", 96},
                                       {"vocab_size", 97},        {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.5},       {"num_key_value_heads", kv_heads},
                                       {"num_key_value_layers", kv_layers},
                                       {"kv_sharing_rope", sharing_rope}, {"eos_token_id", 0}});
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
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<EngineMonitor> monitor;
};

std::unique_ptr<Engine> MakeEngine(const ModelConfig& config, const EngineSetup& setup) {
  auto backend = CreateCpuBackend();
  auto model = Model::Create(config, RandomModelWeights(config, /*seed=*/11), backend.get());
  EXPECT_TRUE(model.ok()) << model.status();
  EngineOptions options;
  options.scheduler.block_size = setup.block_size;
  options.scheduler.num_blocks = setup.num_blocks;
  options.scheduler.max_num_batched_tokens = setup.max_num_batched_tokens;
  options.scheduler.max_num_seqs = setup.max_num_seqs;
  options.scheduler.max_model_len = 256;
  options.scheduler.max_waiting = setup.max_waiting;
  options.scheduler.enable_prefix_caching = setup.prefix_caching;
  options.kv_dtype = setup.kv_dtype;
  options.tokenizer = setup.tokenizer;
  options.monitor = setup.monitor;
  auto engine = Engine::Create(options, std::move(backend), std::move(*model));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

std::vector<int32_t> Prompt(int n, int salt) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < n; ++i) prompt.push_back(1 + (i * 31 + salt * 17) % 96);
  return prompt;
}

EngineRequest Greedy(std::vector<int32_t> prompt, int max_tokens,
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

struct Outcome {
  RequestResult result;
  std::vector<float> logprobs;
};

// Runs `prompts` concurrently (submitted from two threads) and returns their outcomes.
std::vector<Outcome> RunAll(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                            int max_tokens) {
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (size_t i = 0; i < prompts.size(); ++i) observers.push_back(std::make_shared<CollectingObserver>());
  auto submit_range = [&](size_t begin, size_t step) {
    for (size_t i = begin; i < prompts.size(); i += step) {
      auto id = engine.Submit(Greedy(prompts[i], max_tokens, observers[i]));
      EXPECT_TRUE(id.ok()) << id.status();
    }
  };
  std::thread other(submit_range, 1, 2);
  submit_range(0, 2);
  other.join();
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
  for (size_t i = 0; i < a.logprobs.size(); ++i) EXPECT_NEAR(a.logprobs[i], b.logprobs[i], 1e-5) << what;
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
  auto id = engine->Submit(Greedy(Prompt(20, 1), 200, long_one));
  ASSERT_TRUE(id.ok());
  while (long_one->num_deltas() < 2) std::this_thread::yield();
  ASSERT_TRUE(engine->Abort(*id).ok());
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

// --- Text ---------------------------------------------------------------------------------------

// The random models' byte-level tokenizer (each byte one token, "<|endoftext|>" the EOS) over a
// vocabulary of exactly its 257 ids, so that every sampled id has text.
ModelConfig TextConfig() {
  ModelConfig config = SmallConfig(2, 3, "unrotated");
  config.vocab_size = 257;
  return config;
}

std::shared_ptr<const Tokenizer> ByteTokenizer(const ModelConfig& config) {
  auto tokenizer = Tokenizer::FromJson(ByteLevelTokenizerJson(config)->dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

std::unique_ptr<Engine> MakeTextEngine(std::shared_ptr<EngineMonitor> monitor = nullptr) {
  const ModelConfig config = TextConfig();
  EngineSetup setup;
  setup.tokenizer = ByteTokenizer(config);
  setup.monitor = std::move(monitor);
  return MakeEngine(config, setup);
}

EngineRequest GreedyText(std::string text, int max_tokens,
                         std::shared_ptr<CollectingObserver> observer) {
  EngineRequest r = Greedy({}, max_tokens, std::move(observer));
  r.prompt_text = std::move(text);
  return r;
}

std::string DecodeOutput(const Engine& engine, const std::vector<int32_t>& ids) {
  auto text = engine.tokenizer()->Decode(ids, {.skip_special_tokens = true});
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

TEST(EngineTextTest, TextPromptRunsAsItsEncodedIds) {
  auto engine = MakeTextEngine();
  const std::string text = "Hello, w\xC3\xB6rld \xF0\x9F\x98\x80!";
  // One after the other, so that both run alone and must agree exactly.
  auto by_text = std::make_shared<CollectingObserver>();
  ASSERT_TRUE(engine->Submit(GreedyText(text, 12, by_text)).ok());
  const RequestResult a = by_text->Wait();
  auto by_ids = std::make_shared<CollectingObserver>();
  ASSERT_TRUE(engine->Submit(Greedy(*engine->tokenizer()->Encode(text), 12, by_ids)).ok());
  const RequestResult b = by_ids->Wait();
  ASSERT_TRUE(a.status.ok()) << a.status;
  EXPECT_EQ(a.num_prompt_tokens, static_cast<int32_t>(text.size()));
  EXPECT_EQ(a.num_prompt_tokens, b.num_prompt_tokens);
  EXPECT_EQ(a.output_token_ids, b.output_token_ids);
  EXPECT_EQ(a.prompt_logprobs, b.prompt_logprobs);
  EXPECT_EQ(by_text->text(), by_ids->text());
}

// Random bytes decode to ill-formed UTF-8 often: the held-back partial characters and the
// U+FFFD repairs must still come out as Decode makes them, EOS included (no text).
TEST(EngineTextTest, TextDeltasConcatenateToTheDecodedOutput) {
  auto engine = MakeTextEngine();
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < 6; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    EngineRequest r = GreedyText("prompt number " + std::to_string(i), 40, observers.back());
    r.ignore_eos = i % 2 == 0;
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  for (auto& observer : observers) {
    const RequestResult result = observer->Wait();
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_FALSE(result.stop_string);
    EXPECT_EQ(observer->token_ids(), result.output_token_ids);
    EXPECT_EQ(observer->text(), DecodeOutput(*engine, result.output_token_ids));
  }
}

// What a greedy request streams without stop strings: its ids and the text released after each.
struct Unstopped {
  std::vector<int32_t> ids;
  std::vector<std::string> released;  // the text final after ids[0..i]
};

Unstopped RunUnstopped(Engine& engine, const std::string& prompt, int max_tokens) {
  auto observer = std::make_shared<CollectingObserver>();
  EXPECT_TRUE(engine.Submit(GreedyText(prompt, max_tokens, observer)).ok());
  Unstopped u{observer->Wait().output_token_ids, {}};
  IncrementalDecoder decoder(engine.tokenizer(), {.skip_special_tokens = true});
  std::string text;
  for (int32_t id : u.ids) {
    text += *decoder.Add(id);
    u.released.push_back(text);
  }
  return u;
}

TEST(EngineTextTest, StopStringAcrossTokensEndsTheRequestEarly) {
  auto engine = MakeTextEngine();
  const std::string prompt = "The stop string test";
  const Unstopped full = RunUnstopped(*engine, prompt, 60);
  ASSERT_EQ(full.ids.size(), 60u);
  // Three characters from the middle of the output: each comes from at least one byte token.
  const std::string& all = full.released.back();
  size_t begin = all.size() / 2;
  while (begin > 0 && (all[begin] & 0xC0) == 0x80) --begin;
  size_t end = begin;
  for (int chars = 0; chars < 3 && end < all.size(); ++chars) {
    do ++end; while (end < all.size() && (all[end] & 0xC0) == 0x80);
  }
  const std::string stop = all.substr(begin, end - begin);
  size_t stop_tokens = 0;  // the tokens up to the one whose text completes the first occurrence
  while (full.released[stop_tokens].find(stop) == std::string::npos) ++stop_tokens;
  ++stop_tokens;
  ASSERT_LT(stop_tokens, full.ids.size());

  auto observer = std::make_shared<CollectingObserver>();
  EngineRequest r = GreedyText(prompt, 60, observer);
  r.stop_strings = {"\x01never\x02", stop};
  ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  const RequestResult result = observer->Wait();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.finish_reason, FinishReason::kStop);
  EXPECT_EQ(result.stop_string, stop);
  EXPECT_FALSE(result.stop_token_id);
  EXPECT_EQ(result.output_token_ids,
            std::vector<int32_t>(full.ids.begin(), full.ids.begin() + stop_tokens));
  EXPECT_EQ(observer->text(), all.substr(0, all.find(stop)));
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(engine->GetStats().scheduler.kv.num_used_blocks, 0);
}

TEST(EngineTextTest, BadTextFieldsAreRefusedNamingTheField) {
  auto text_engine = MakeTextEngine();
  auto ids_engine = MakeEngine(SmallConfig(2, 5, "unrotated"), {});
  auto sink = std::make_shared<CollectingObserver>();
  auto refuse = [&](Engine& engine, EngineRequest r, const std::string& message) {
    auto id = engine.Submit(std::move(r));
    ASSERT_FALSE(id.ok()) << message;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(message));
  };
  EngineRequest both = GreedyText("hi", 5, sink);
  both.prompt_token_ids = {1, 2};
  refuse(*text_engine, both, "prompt_text: give either");
  refuse(*text_engine, GreedyText("", 5, sink), "prompt_text: is empty");
  refuse(*text_engine, GreedyText("bad \xC3\x28 utf-8", 5, sink), "prompt_text:");
  refuse(*text_engine, GreedyText(std::string(300, 'x'), 5, sink), "maximum model length");
  refuse(*ids_engine, GreedyText("hi", 5, sink), "prompt_text: the model has no tokenizer");
  EngineRequest stop_without_tokenizer = Greedy(Prompt(5, 1), 5, sink);
  stop_without_tokenizer.stop_strings = {"x"};
  refuse(*ids_engine, stop_without_tokenizer, "stop: stop strings need a tokenizer");
  EngineRequest empty_stop = GreedyText("hi", 5, sink);
  empty_stop.stop_strings = {"x", ""};
  refuse(*text_engine, empty_stop, "stop: stop string 1 is empty");
  EngineRequest bad_stop = GreedyText("hi", 5, sink);
  bad_stop.stop_strings = {"\xFF"};
  refuse(*text_engine, bad_stop, "stop: stop string 0 is not well-formed UTF-8");
  EXPECT_EQ(sink->num_deltas(), 0);
}

// --- Monitoring ---------------------------------------------------------------------------------

class RecordingMonitor final : public EngineMonitor {
 public:
  struct Tokens {
    int32_t num_tokens;
    bool first;
    absl::Time previous, now;
  };
  void OnTokens(int32_t num_tokens, bool first, absl::Time previous, absl::Time now) override {
    absl::MutexLock lock(&mu_);
    tokens_.push_back({num_tokens, first, previous, now});
  }
  void OnFinished(const RequestResult& result) override {
    absl::MutexLock lock(&mu_);
    finished_.push_back(result);
  }
  std::vector<Tokens> tokens() const {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  std::vector<RequestResult> finished() const {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Tokens> tokens_ ABSL_GUARDED_BY(mu_);
  std::vector<RequestResult> finished_ ABSL_GUARDED_BY(mu_);
};

TEST(EngineMonitorTest, SeesEveryTokenAndEveryEndWithConsistentTimings) {
  auto monitor = std::make_shared<RecordingMonitor>();
  EngineSetup setup;
  setup.monitor = monitor;
  setup.num_blocks = 12;  // 192 tokens: the 240-token request below can never fit
  auto engine = MakeEngine(SmallConfig(2, 5, "unrotated"), setup);
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  std::vector<std::string> ids;
  auto submit = [&](std::vector<int32_t> prompt, int max_tokens) {
    observers.push_back(std::make_shared<CollectingObserver>());
    auto id = engine->Submit(Greedy(std::move(prompt), max_tokens, observers.back()));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  };
  for (int i = 0; i < 4; ++i) submit(Prompt(10 + i, i), 8 + i);
  submit(Prompt(150, 7), 90);  // never fits
  submit(Prompt(10, 9), 100);  // aborted
  while (observers.back()->num_deltas() < 1) std::this_thread::yield();
  ASSERT_TRUE(engine->Abort(ids.back()).ok());

  int64_t num_output_tokens = 0;
  int num_with_tokens = 0;
  for (size_t i = 0; i < observers.size(); ++i) {
    const RequestResult result = observers[i]->Wait();
    EXPECT_EQ(result.request_id, ids[i]);
    num_output_tokens += static_cast<int64_t>(result.output_token_ids.size());
    if (!result.output_token_ids.empty()) ++num_with_tokens;
    const RequestTimings& t = result.timings;
    EXPECT_NE(t.arrival, absl::InfinitePast()) << i;
    EXPECT_LE(t.arrival, t.finished) << i;
    if (result.output_token_ids.empty()) {
      EXPECT_EQ(t.first_token, absl::InfinitePast()) << i;
      continue;
    }
    EXPECT_LE(t.arrival, t.first_scheduled) << i;
    EXPECT_LE(t.first_scheduled, t.first_token) << i;
    EXPECT_LE(t.first_token - t.arrival, t.finished - t.arrival) << i;  // ttft <= e2e
  }
  EXPECT_EQ(observers[4]->Wait().finish_reason, FinishReason::kError);
  EXPECT_EQ(observers[5]->Wait().finish_reason, FinishReason::kAbort);
  ASSERT_TRUE(engine->WaitIdle(absl::Seconds(10)));

  const auto finished = monitor->finished();
  ASSERT_EQ(finished.size(), observers.size());
  std::vector<std::string> finished_ids;
  for (const RequestResult& r : finished) finished_ids.push_back(r.request_id);
  EXPECT_THAT(finished_ids, ::testing::UnorderedElementsAreArray(ids));
  int64_t monitored_tokens = 0;
  int num_first = 0;
  for (const RecordingMonitor::Tokens& t : monitor->tokens()) {
    monitored_tokens += t.num_tokens;
    num_first += t.first ? 1 : 0;
    EXPECT_LE(t.previous, t.now);
  }
  EXPECT_EQ(monitored_tokens, num_output_tokens);
  EXPECT_EQ(num_first, num_with_tokens);
}

}  // namespace
}  // namespace mlkv
