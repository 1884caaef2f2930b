// Test helpers for mlkv-server: a tiny random model, an engine for it, the server on a loopback
// port with its stubs, and a reader that gathers a Generate stream. For tests only.
#ifndef MLKV_SERVER_TESTING_SERVER_HARNESS_H_
#define MLKV_SERVER_TESTING_SERVER_HARNESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/collecting_observer.h"
#include "engine/engine.h"
#include "engine/testing/engine_setup.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "mlkv/v1/mlkv.grpc.pb.h"
#include "model/random_model.h"
#include "server/mlkv_server.h"

namespace mlkv::server::testing {

// A 4-layer model with 2 KV layers of 2 KV heads (an MLKV shape): fast, and still exercises
// sharing groups.
inline ModelConfig TinyConfig() {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 4},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 4096},
                                       {"rotary_pct", 0.5},
                                       {"num_key_value_heads", 2},
                                       {"num_key_value_layers", 2},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

inline constexpr uint64_t kWeightSeed = 5;

inline EngineOptions SmallOptions() {
  EngineOptions options;
  options.scheduler.block_size = 16;
  options.scheduler.num_blocks = 600;
  options.scheduler.max_num_seqs = 64;
  options.scheduler.max_num_batched_tokens = 512;
  options.scheduler.max_model_len = 4096;
  options.scheduler.max_waiting = 1000;
  return options;
}

// TinyConfig with room for the random models' byte-level tokenizer (each byte one token), and
// nothing more, so that every sampled id has text.
inline ModelConfig TextConfig() {
  ModelConfig config = TinyConfig();
  config.vocab_size = 257;
  return config;
}

inline EngineOptions TextOptions() {
  EngineOptions options = SmallOptions();
  auto tokenizer = Tokenizer::FromJson(ByteLevelTokenizerJson(TextConfig())->dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  options.tokenizer = *std::move(tokenizer);
  return options;
}

inline std::unique_ptr<Engine> MakeEngine(const ModelConfig& config, const EngineOptions& options) {
  return ::mlkv::testing::MakeEngine(config, options, kWeightSeed, /*threads=*/1);
}

using ::mlkv::testing::Prompt;

// A greedy request for `max_tokens` tokens after `prompt`, EOS ignored: the same on every run.
inline v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_token_ids(id);
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  r.set_temperature(0.0f);
  return r;
}

// The server "tiny" on 127.0.0.1 (a port the kernel picks; server_options' own are ignored);
// null, after a failed expectation, when it cannot start.
inline std::unique_ptr<MlkvServer> StartServer(ServerOptions server_options = {},
                                               const EngineOptions& options = SmallOptions(),
                                               const ModelConfig& config = TinyConfig()) {
  ServedModel model{MakeEngine(config, options), options, "tiny"};
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  auto started = MlkvServer::Start(server_options, std::move(model));
  EXPECT_TRUE(started.ok()) << started.status();
  return started.ok() ? *std::move(started) : nullptr;
}

// A channel to a server started by StartServer.
inline std::shared_ptr<grpc::Channel> Connect(
    const MlkvServer& server, const std::shared_ptr<grpc::ChannelCredentials>& credentials =
                                  grpc::InsecureChannelCredentials()) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), credentials);
}

// The server on 127.0.0.1 (a port the kernel picks), and stubs on one channel to it.
struct TestServer {
  explicit TestServer(const EngineOptions& options = SmallOptions(),
                      ServerOptions server_options = {}, const ModelConfig& config = TinyConfig())
      : server(StartServer(std::move(server_options), options, config)) {
    if (server == nullptr) return;  // StartServer has failed the test
    channel = Connect(*server);
    stub = v1::MlkvService::NewStub(channel);
    health = grpc::health::v1::Health::NewStub(channel);
  }

  v1::Load GetLoad() {
    grpc::ClientContext context;
    v1::Load load;
    grpc::Status status = stub->GetLoad(&context, v1::GetLoadRequest(), &load);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return load;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  std::unique_ptr<MlkvServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::MlkvService::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

// Everything one Generate call returned.
struct Streamed {
  grpc::Status status;
  std::vector<int32_t> token_ids;
  std::string text;  // all deltas' texts
  std::vector<v1::TokenLogprob> logprobs;
  std::optional<v1::GenerateResult> result;
  int num_messages = 0;
  bool result_was_last = true;  // no message followed the result
};

// Reads a Generate stream to its end. `context` may carry a deadline or be cancelled by another
// thread.
inline Streamed Collect(v1::MlkvService::Stub* stub, const v1::GenerateRequest& request,
                        grpc::ClientContext* context) {
  Streamed out;
  auto reader = stub->Generate(context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    ++out.num_messages;
    if (out.result) out.result_was_last = false;
    if (response.has_delta()) {
      for (int32_t id : response.delta().token_ids()) out.token_ids.push_back(id);
      out.text += response.delta().text();
      for (const auto& lp : response.delta().logprobs()) out.logprobs.push_back(lp);
    } else if (response.has_result()) {
      out.result = response.result();
    }
  }
  out.status = reader->Finish();
  return out;
}

inline Streamed Collect(v1::MlkvService::Stub* stub, const v1::GenerateRequest& request) {
  grpc::ClientContext context;
  return Collect(stub, request, &context);
}

// The engine's own output for an EngineRequest, run directly (no server) on `engine`.
struct Direct {
  RequestResult result;
  std::vector<TokenLogprob> logprobs;
};

inline Direct RunDirect(Engine* engine, EngineRequest request) {
  auto observer = std::make_shared<CollectingObserver>();
  request.observer = observer;
  auto id = engine->Submit(std::move(request));
  EXPECT_TRUE(id.ok()) << id.status();
  Direct out{observer->Wait(), observer->logprobs()};
  return out;
}

}  // namespace mlkv::server::testing

#endif  // MLKV_SERVER_TESTING_SERVER_HARNESS_H_
