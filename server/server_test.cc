// mlkv-server's native API end to end on a loopback port, through the generated C++ stubs:
// streams equal the engine's own output, model info and load are right, invalid fields are
// refused by name, health answers as documented; with a tokenizer, text prompts, text deltas,
// stop strings, Tokenize and Detokenize.
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/generate_request.h"
#include "server/testing/server_harness.h"

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::Collect;
using ::mlkv::server::testing::Direct;
using ::mlkv::server::testing::GreedyRequest;
using ::mlkv::server::testing::MakeEngine;
using ::mlkv::server::testing::Prompt;
using ::mlkv::server::testing::RunDirect;
using ::mlkv::server::testing::SmallOptions;
using ::mlkv::server::testing::Streamed;
using ::mlkv::server::testing::TestServer;
using ::mlkv::server::testing::TextConfig;
using ::mlkv::server::testing::TextOptions;
using ::mlkv::server::testing::TinyConfig;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;

// The server's stream against the same request run directly on a second engine of the same
// weights and options.
void ExpectSameAsEngine(const Streamed& streamed, const Direct& direct, const std::string& what) {
  ASSERT_TRUE(streamed.status.ok()) << what << ": " << streamed.status.error_message();
  ASSERT_TRUE(direct.result.status.ok()) << what << ": " << direct.result.status;
  ASSERT_TRUE(streamed.result.has_value()) << what;
  EXPECT_TRUE(streamed.result_was_last) << what;
  EXPECT_THAT(streamed.token_ids, ElementsAreArray(direct.result.output_token_ids)) << what;
  EXPECT_EQ(streamed.result->finish_reason(), ToProto(direct.result.finish_reason)) << what;
  EXPECT_EQ(streamed.result->usage().completion_tokens(),
            static_cast<int>(direct.result.output_token_ids.size()))
      << what;
  EXPECT_EQ(streamed.result->usage().prompt_tokens(), direct.result.num_prompt_tokens) << what;
  ASSERT_EQ(streamed.logprobs.size(), direct.logprobs.size()) << what;
  for (size_t i = 0; i < direct.logprobs.size(); ++i) {
    EXPECT_EQ(streamed.logprobs[i].token_id(), direct.logprobs[i].token_id) << what;
    EXPECT_NEAR(streamed.logprobs[i].logprob(), direct.logprobs[i].logprob, 1e-5) << what;
    ASSERT_EQ(streamed.logprobs[i].top_size(), static_cast<int>(direct.logprobs[i].top.size()));
    for (size_t k = 0; k < direct.logprobs[i].top.size(); ++k) {
      EXPECT_EQ(streamed.logprobs[i].top(k).token_id(), direct.logprobs[i].top[k].first) << what;
    }
  }
}

Direct RunOnEngine(Engine* engine, const v1::GenerateRequest& request) {
  auto converted =
      ToEngineRequest(request, engine->model_config(), RequestLimits::Of(SmallOptions().scheduler));
  EXPECT_TRUE(converted.ok()) << converted.status();
  return RunDirect(engine, *std::move(converted));
}

class ServerTest : public ::testing::Test {
 protected:
  TestServer server_;
  std::unique_ptr<Engine> reference_ = MakeEngine(TinyConfig(), SmallOptions());
};

TEST_F(ServerTest, GreedyStreamEqualsTheEngine) {
  for (int i = 0; i < 3; ++i) {
    v1::GenerateRequest request = GreedyRequest(Prompt(5 + 13 * i, i), 12);
    request.set_logprobs(3);
    const Streamed streamed = Collect(server_.stub.get(), request);
    ExpectSameAsEngine(streamed, RunOnEngine(reference_.get(), request),
                       "prompt " + std::to_string(i));
    EXPECT_EQ(streamed.result->finish_reason(), v1::FINISH_REASON_LENGTH);
    EXPECT_FALSE(streamed.result->has_stop_token_id());
    EXPECT_GE(streamed.num_messages, 2);  // at least one delta, then the result
  }
}

TEST_F(ServerTest, SeededSamplingEqualsTheEngine) {
  v1::GenerateRequest request = GreedyRequest(Prompt(20, 4), 16);
  request.set_temperature(0.9f);
  request.set_top_k(30);
  request.set_top_p(0.95f);
  request.set_presence_penalty(0.3f);
  request.set_seed(0);  // 0 is a seed like any other
  const Streamed streamed = Collect(server_.stub.get(), request);
  ExpectSameAsEngine(streamed, RunOnEngine(reference_.get(), request), "sampled");
  // The same seed again gives the same tokens.
  EXPECT_EQ(Collect(server_.stub.get(), request).token_ids, streamed.token_ids);
}

TEST_F(ServerTest, StopTokenEndsTheStreamAndIsReported) {
  v1::GenerateRequest request = GreedyRequest(Prompt(9, 2), 12);
  const Streamed free_run = Collect(server_.stub.get(), request);
  ASSERT_EQ(free_run.token_ids.size(), 12u);
  const int32_t stop = free_run.token_ids[3];
  request.add_stop_token_ids(stop);
  const Streamed stopped = Collect(server_.stub.get(), request);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  ASSERT_TRUE(stopped.result.has_value());
  EXPECT_EQ(stopped.result->finish_reason(), v1::FINISH_REASON_STOP);
  ASSERT_TRUE(stopped.result->has_stop_token_id());
  EXPECT_EQ(stopped.result->stop_token_id(), stop);
  EXPECT_EQ(stopped.token_ids.back(), stop);
  EXPECT_LE(stopped.token_ids.size(), 4u);  // it may occur even earlier
}

TEST_F(ServerTest, PromptLogprobsAndCachedPromptTokens) {
  v1::GenerateRequest request = GreedyRequest(Prompt(40, 6), 2);
  request.set_prompt_logprobs(true);
  const Streamed scored = Collect(server_.stub.get(), request);
  ExpectSameAsEngine(scored, RunOnEngine(reference_.get(), request), "prompt logprobs");
  EXPECT_EQ(scored.result->prompt_logprobs_size(), 39);
  // The same prompt again, without prompt logprobs, finds its two full blocks cached.
  request.set_prompt_logprobs(false);
  const Streamed cached = Collect(server_.stub.get(), request);
  ASSERT_TRUE(cached.result.has_value());
  EXPECT_EQ(cached.result->usage().cached_prompt_tokens(), 32);
  EXPECT_EQ(cached.token_ids, scored.token_ids);
}

TEST_F(ServerTest, ConcurrentStreamsEachEqualTheEngine) {
  constexpr int kStreams = 200;
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < kStreams; ++i) {
    requests.push_back(GreedyRequest(Prompt(3 + i % 17, i), 8 + i % 5));
  }
  std::vector<Streamed> streamed(kStreams);
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] { streamed[i] = Collect(server_.stub.get(), requests[i]); });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ExpectSameAsEngine(streamed[i], RunOnEngine(reference_.get(), requests[i]),
                       "stream " + std::to_string(i));
  }
  const v1::Load load = server_.GetLoad();
  EXPECT_EQ(load.num_running(), 0);
  EXPECT_EQ(load.num_used_blocks(), 0);
}

TEST_F(ServerTest, ClientRequestIdIsReturnedAndServerAssignsOne) {
  v1::GenerateRequest request = GreedyRequest(Prompt(4, 1), 2);
  request.set_request_id("my-request");
  Streamed named = Collect(server_.stub.get(), request);
  ASSERT_TRUE(named.result.has_value());
  EXPECT_EQ(named.result->request_id(), "my-request");
  request.clear_request_id();
  Streamed unnamed = Collect(server_.stub.get(), request);
  ASSERT_TRUE(unnamed.result.has_value());
  EXPECT_FALSE(unnamed.result->request_id().empty());
}

TEST_F(ServerTest, ModelInfoDescribesModelAndCache) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(server_.stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  const ModelConfig config = TinyConfig();
  EXPECT_EQ(info.model_name(), "tiny");
  EXPECT_EQ(info.config().hidden_size(), 64);
  EXPECT_EQ(info.config().num_hidden_layers(), 4);
  EXPECT_EQ(info.config().vocab_size(), 97);
  EXPECT_EQ(info.config().num_key_value_heads(), 2);
  EXPECT_EQ(info.config().num_key_value_layers(), 2);
  EXPECT_EQ(info.config().head_dim(), 16);
  EXPECT_EQ(info.config().eos_token_id(), 0);
  ASSERT_EQ(info.config().kv_groups_size(), 2);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(info.config().kv_groups(g).kv_layer(), config.kv_layers[g]);
    EXPECT_EQ(info.config().kv_groups(g).layers(0), config.kv_layers[g]);
    EXPECT_EQ(info.config().kv_groups(g).layers_size(), 2);
  }
  // 2 (K and V) x 2 KV layers x 2 heads x 16 dims x 4 bytes.
  EXPECT_EQ(info.kv_cache().kv_bytes_per_token(), 2 * 2 * 2 * 16 * 4);
  EXPECT_EQ(info.kv_cache().kv_dtype(), "f32");
  EXPECT_EQ(info.kv_cache().block_size(), 16);
  EXPECT_EQ(info.kv_cache().block_bytes(), 16 * info.kv_cache().kv_bytes_per_token());
  EXPECT_EQ(info.kv_cache().num_blocks(), 600);
  EXPECT_EQ(info.kv_cache().capacity_tokens(), 600 * 16);
  EXPECT_EQ(info.kv_cache().max_model_len(), 4096);
  EXPECT_EQ(info.kv_cache().max_concurrent_sequences(), 600 / 256);
  EXPECT_TRUE(info.kv_cache().prefix_caching());
  EXPECT_EQ(info.limits().max_num_seqs(), 64);
  EXPECT_EQ(info.limits().max_num_batched_tokens(), 512);
  EXPECT_EQ(info.limits().max_waiting(), 1000);
}

TEST_F(ServerTest, LoadWhenIdle) {
  const v1::Load load = server_.GetLoad();
  EXPECT_EQ(load.num_running(), 0);
  EXPECT_EQ(load.num_waiting(), 0);
  EXPECT_EQ(load.num_used_blocks(), 0);
  EXPECT_EQ(load.num_blocks(), 600);
  EXPECT_EQ(load.kv_cache_usage(), 0.0);
  EXPECT_TRUE(load.accepting());
  ASSERT_EQ(load.groups_size(), 2);
  EXPECT_EQ(load.groups(1).num_blocks(), 600);
  EXPECT_EQ(load.groups(1).total_bytes(), 600 * 16 * (2 * 2 * 16 * 4));  // one group's K and V
  EXPECT_EQ(load.groups(1).used_bytes(), 0);
}

TEST_F(ServerTest, InvalidFieldsAreRefusedByName) {
  struct Case {
    v1::GenerateRequest request;
    const char* field;
  };
  std::vector<Case> cases;
  cases.push_back({v1::GenerateRequest(), "prompt_token_ids"});
  v1::GenerateRequest text;  // this model has no tokenizer
  text.set_prompt_text("Hello");
  cases.push_back({text, "prompt_text"});
  text.add_prompt_token_ids(1);
  cases.push_back({text, "prompt_token_ids"});  // both forms
  v1::GenerateRequest r = GreedyRequest({1, 2, 97}, 4);
  cases.push_back({r, "prompt_token_ids"});
  r = GreedyRequest({1, 2}, 0);
  cases.push_back({r, "max_tokens"});
  r = GreedyRequest({1, 2}, 4095);
  cases.push_back({r, "max_tokens"});
  r = GreedyRequest({1, 2}, 4);
  r.set_top_p(0.0f);
  cases.push_back({r, "top_p"});
  r = GreedyRequest({1, 2}, 4);
  r.set_logprobs(kMaxLogprobs + 1);
  cases.push_back({r, "logprobs"});
  r = GreedyRequest({1, 2}, 4);
  r.add_stop("END");
  cases.push_back({r, "stop"});
  for (const Case& c : cases) {
    const Streamed s = Collect(server_.stub.get(), c.request);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(s.status.error_message(), StartsWith(c.field));
    EXPECT_EQ(s.num_messages, 0) << c.field;
  }
  // Nothing of the refused requests reached the engine.
  EXPECT_EQ(server_.GetLoad().num_used_blocks(), 0);
}

TEST_F(ServerTest, DuplicateLiveRequestIdIsAlreadyExists) {
  v1::GenerateRequest request = GreedyRequest(Prompt(4, 3), 3000);
  request.set_request_id("twin");
  grpc::ClientContext first;
  auto reader = server_.stub->Generate(&first, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));  // "twin" is live now
  const Streamed second = Collect(server_.stub.get(), request);
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  first.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerTest, HealthIsServing) {
  EXPECT_EQ(server_.Health(""), HealthStatus::SERVING);
  EXPECT_EQ(server_.Health("mlkv.v1.MlkvService"), HealthStatus::SERVING);
}

TEST_F(ServerTest, BusyPortIsAnError) {
  ServedModel model{MakeEngine(TinyConfig(), SmallOptions()), SmallOptions(), "second"};
  auto second = MlkvServer::Start({"127.0.0.1", server_.server->port()}, std::move(model));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.Health(""), HealthStatus::SERVING);  // the first one is unharmed
}

TEST_F(ServerTest, TokenizerCallsWithoutATokenizerAreFailedPrecondition) {
  grpc::ClientContext a, b;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hi");
  v1::TokenizeResponse tokens;
  const grpc::Status encoded = server_.stub->Tokenize(&a, tokenize, &tokens);
  EXPECT_EQ(encoded.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(encoded.error_message(), HasSubstr("no tokenizer"));
  v1::DetokenizeRequest detokenize;
  detokenize.add_token_ids(1);
  v1::DetokenizeResponse text;
  EXPECT_EQ(server_.stub->Detokenize(&b, detokenize, &text).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// --- With a tokenizer ---------------------------------------------------------------------------

v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r = GreedyRequest({}, max_tokens);
  r.set_prompt_text(prompt);
  return r;
}

class ServerTextTest : public ::testing::Test {
 protected:
  std::string Decode(const std::vector<int32_t>& ids) {
    auto text = reference_->tokenizer()->Decode(ids, {.skip_special_tokens = true});
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }

  TestServer server_{TextOptions(), {}, TextConfig()};
  std::unique_ptr<Engine> reference_ = MakeEngine(TextConfig(), TextOptions());
};

TEST_F(ServerTextTest, TextPromptStreamsTheEnginesTokensAndTheirText) {
  const std::string prompt = "Hello, w\xC3\xB6rld";
  v1::GenerateRequest request = TextRequest(prompt, 30);
  request.set_logprobs(2);
  const Streamed streamed = Collect(server_.stub.get(), request);
  ExpectSameAsEngine(streamed, RunOnEngine(reference_.get(), request), "text prompt");
  EXPECT_EQ(streamed.result->usage().prompt_tokens(), static_cast<int>(prompt.size()));
  EXPECT_EQ(streamed.text, Decode(streamed.token_ids));
  // The same prompt as ids: the same tokens and text.
  v1::GenerateRequest by_ids = GreedyRequest(*reference_->tokenizer()->Encode(prompt), 30);
  const Streamed as_ids = Collect(server_.stub.get(), by_ids);
  EXPECT_EQ(as_ids.token_ids, streamed.token_ids);
  EXPECT_EQ(as_ids.text, streamed.text);
}

TEST_F(ServerTextTest, StopStringEndsTheStreamBeforeIt) {
  const v1::GenerateRequest free_request = TextRequest("Stop me", 40);
  const Streamed free_run = Collect(server_.stub.get(), free_request);
  ASSERT_TRUE(free_run.status.ok()) << free_run.status.error_message();
  // Two characters from the middle of the text: at least two tokens.
  const std::string& all = free_run.text;
  size_t begin = all.size() / 2;
  while (begin > 0 && (all[begin] & 0xC0) == 0x80) --begin;
  size_t end = begin + 1;
  while (end < all.size() && (all[end] & 0xC0) == 0x80) ++end;
  ++end;
  while (end < all.size() && (all[end] & 0xC0) == 0x80) ++end;
  const std::string stop = all.substr(begin, end - begin);

  v1::GenerateRequest request = free_request;
  request.add_stop(stop);
  const Streamed stopped = Collect(server_.stub.get(), request);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  ASSERT_TRUE(stopped.result.has_value());
  EXPECT_EQ(stopped.result->finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stopped.result->stop_string(), stop);
  EXPECT_FALSE(stopped.result->has_stop_token_id());
  EXPECT_EQ(stopped.text, all.substr(0, all.find(stop)));
  ASSERT_LT(stopped.token_ids.size(), free_run.token_ids.size());
  EXPECT_TRUE(
      std::equal(stopped.token_ids.begin(), stopped.token_ids.end(), free_run.token_ids.begin()));
  EXPECT_EQ(server_.GetLoad().num_used_blocks(), 0);
}

TEST_F(ServerTextTest, BadTextFieldsAreRefusedByName) {
  std::vector<std::pair<v1::GenerateRequest, const char*>> cases;
  v1::GenerateRequest r = TextRequest("hi", 4);
  r.add_stop("");
  cases.push_back({r, "stop"});
  cases.push_back({TextRequest(std::string(5000, 'x'), 4), "prompt"});  // beyond max_model_len
  for (const auto& [request, field] : cases) {
    const Streamed s = Collect(server_.stub.get(), request);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_THAT(s.status.error_message(), StartsWith(field));
    EXPECT_EQ(s.num_messages, 0) << field;
  }
}

TEST_F(ServerTextTest, TokenizeAndDetokenizeRoundTrip) {
  const Tokenizer& tokenizer = *reference_->tokenizer();
  const std::string text = "Hi \xC3\xA9<|endoftext|>";
  v1::TokenizeRequest tokenize;
  tokenize.set_text(text);
  tokenize.set_add_bos(true);
  v1::TokenizeResponse tokens;
  grpc::ClientContext a;
  ASSERT_TRUE(server_.stub->Tokenize(&a, tokenize, &tokens).ok());
  const std::vector<int32_t> ids = *tokenizer.Encode(text);
  std::vector<int32_t> expected = {static_cast<int32_t>(TextConfig().bos_token_id)};
  expected.insert(expected.end(), ids.begin(), ids.end());
  EXPECT_THAT(tokens.token_ids(), ElementsAreArray(expected));

  v1::DetokenizeRequest detokenize;
  *detokenize.mutable_token_ids() = tokens.token_ids();
  detokenize.mutable_token_ids()->erase(detokenize.mutable_token_ids()->begin());  // the BOS
  for (bool skip : {false, true}) {
    detokenize.set_skip_special_tokens(skip);
    v1::DetokenizeResponse decoded;
    grpc::ClientContext b;
    ASSERT_TRUE(server_.stub->Detokenize(&b, detokenize, &decoded).ok());
    EXPECT_EQ(decoded.text(), skip ? "Hi \xC3\xA9" : text);
  }
}

TEST_F(ServerTextTest, DetokenizeNamesTheIdOutsideTheVocabulary) {
  for (int32_t bad : {257, -1}) {
    v1::DetokenizeRequest detokenize;
    detokenize.add_token_ids(72);
    detokenize.add_token_ids(bad);
    v1::DetokenizeResponse decoded;
    grpc::ClientContext context;
    const grpc::Status status = server_.stub->Detokenize(&context, detokenize, &decoded);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(status.error_message(), StartsWith("token_ids:"));
    EXPECT_THAT(status.error_message(), HasSubstr(std::to_string(bad)));
  }
}

}  // namespace
}  // namespace mlkv::server
