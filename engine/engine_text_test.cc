// The engine with a tokenizer: text prompts, text deltas and stop strings; and a monitor that
// sees every request's tokens and end.
#include <string>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "engine/testing/engine_setup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using testing::EngineSetup;
using testing::GatedObserver;
using testing::Greedy;
using ::testing::HasSubstr;
using testing::MakeEngine;
using testing::Prompt;
using testing::SmallConfig;

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
    do ++end;
    while (end < all.size() && (all[end] & 0xC0) == 0x80);
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
  std::shared_ptr<GatedObserver> gate;
  auto submit = [&](std::vector<int32_t> prompt, int max_tokens, bool gated = false) {
    observers.push_back(std::make_shared<CollectingObserver>());
    EngineRequest request = Greedy(std::move(prompt), max_tokens, observers.back());
    if (gated) request.observer = gate = std::make_shared<GatedObserver>(observers.back());
    auto id = engine->Submit(std::move(request));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  };
  for (int i = 0; i < 4; ++i) submit(Prompt(10 + i, i), 8 + i);
  submit(Prompt(150, 7), 90);  // never fits
  // Aborted after its first tokens: the gate holds the engine there until the abort is queued.
  submit(Prompt(10, 9), 100, /*gated=*/true);
  gate->WaitUntilReached();
  ASSERT_TRUE(engine->Abort(ids.back()).ok());
  gate->Open();

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
