// KServe v2 end to end on a loopback port through generated C++ stubs: ModelInfer and
// ModelStreamInfer (decoupled) give the engine's own tokens and text for the same request and
// seed, metadata and readiness answer, bad requests are refused by name without harming the
// stream they came on, cancels free the engine, and API keys guard every RPC.
#include <map>
#include <optional>
#include <thread>

#include "engine/collecting_observer.h"
#include "engine/random_model.h"
#include "engine/tokenizer/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/testing/server_harness.h"

namespace mlkv::server::kserve {
namespace {

using ::mlkv::server::testing::MakeEngine;
using ::mlkv::server::testing::Prompt;
using ::mlkv::server::testing::SmallOptions;
using ::mlkv::server::testing::TestServer;
using ::mlkv::server::testing::TextConfig;
using ::mlkv::server::testing::TextOptions;
using ::mlkv::server::testing::TinyConfig;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Tensor = inference::ModelInferRequest::InferInputTensor;

// --- Building requests and reading responses (typed contents; raw is covered below) ---------

inference::ModelInferRequest Request(const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name("tiny");
  r.set_id(id);
  return r;
}

Tensor* Input(inference::ModelInferRequest* r, const std::string& name, const std::string& type,
              int64_t n) {
  Tensor* t = r->add_inputs();
  t->set_name(name);
  t->set_datatype(type);
  t->add_shape(n);
  return t;
}

void AddIds(inference::ModelInferRequest* r, const std::vector<int32_t>& ids) {
  Tensor* t = Input(r, "input_ids", "INT32", static_cast<int64_t>(ids.size()));
  for (int32_t id : ids) t->mutable_contents()->add_int_contents(id);
}

void AddText(inference::ModelInferRequest* r, const std::string& name, const std::string& text) {
  Input(r, name, "BYTES", 1)->mutable_contents()->add_bytes_contents(text);
}

void AddBool(inference::ModelInferRequest* r, const std::string& name, bool value) {
  Input(r, name, "BOOL", 1)->mutable_contents()->add_bool_contents(value);
}

// Greedy, ignoring EOS, `max_tokens` long: every run gives the same tokens.
inference::ModelInferRequest GreedyIds(const std::string& id, const std::vector<int32_t>& prompt,
                                       int max_tokens) {
  inference::ModelInferRequest r = Request(id);
  AddIds(&r, prompt);
  AddText(
      &r, "sampling_parameters",
      absl::StrCat(R"({"temperature": 0, "ignore_eos": true, "max_tokens": )", max_tokens, "}"));
  return r;
}

// An output's data, from typed contents or raw_output_contents.
struct Output {
  bool present = false;
  std::string text;
  std::vector<int32_t> ids;
};

Output GetOutput(const inference::ModelInferResponse& response, const std::string& name) {
  Output out;
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& tensor = response.outputs(i);
    if (tensor.name() != name) continue;
    out.present = true;
    if (response.raw_output_contents_size() > 0) {
      const std::string& raw = response.raw_output_contents(i);
      if (tensor.datatype() == "BYTES") {
        uint32_t n;
        std::memcpy(&n, raw.data(), 4);
        EXPECT_EQ(raw.size(), 4 + n);
        out.text = raw.substr(4);
      } else {
        out.ids.resize(raw.size() / 4);
        std::memcpy(out.ids.data(), raw.data(), raw.size());
      }
    } else if (tensor.datatype() == "BYTES") {
      EXPECT_EQ(tensor.contents().bytes_contents_size(), 1);
      out.text = tensor.contents().bytes_contents(0);
    } else {
      out.ids.assign(tensor.contents().int_contents().begin(),
                     tensor.contents().int_contents().end());
    }
    EXPECT_EQ(tensor.shape(0), tensor.datatype() == "BYTES" ? 1 : out.ids.size()) << name;
  }
  return out;
}

const inference::InferParameter* Param(const inference::ModelInferResponse& response,
                                       const std::string& key) {
  auto it = response.parameters().find(key);
  return it == response.parameters().end() ? nullptr : &it->second;
}

// The engine's own run of a request, with its text.
struct Direct {
  RequestResult result;
  std::string text;
};

Direct RunDirect(Engine* engine, EngineRequest request) {
  auto observer = std::make_shared<CollectingObserver>();
  request.observer = observer;
  EXPECT_TRUE(engine->Submit(std::move(request)).ok());
  Direct out{observer->Wait(), ""};
  out.text = observer->text();
  return out;
}

EngineRequest GreedyEngineRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  EngineRequest r;
  r.prompt_token_ids = prompt;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  return r;
}

// Everything one ModelStreamInfer call returned, by request id.
struct StreamResult {
  grpc::Status status;
  std::vector<inference::ModelStreamInferResponse> responses;  // in arrival order

  std::vector<const inference::ModelStreamInferResponse*> For(const std::string& id) const {
    std::vector<const inference::ModelStreamInferResponse*> out;
    for (const auto& r : responses) {
      if (r.infer_response().id() == id) out.push_back(&r);
    }
    return out;
  }
};

// Sends `requests` on one stream (then closes the sending side) and reads to the end.
StreamResult Stream(inference::GRPCInferenceService::Stub* stub,
                    const std::vector<inference::ModelInferRequest>& requests,
                    grpc::ClientContext* context) {
  auto stream = stub->ModelStreamInfer(context);
  std::thread writer([&] {
    for (const auto& request : requests) {
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  StreamResult out;
  inference::ModelStreamInferResponse response;
  while (stream->Read(&response)) out.responses.push_back(response);
  writer.join();
  out.status = stream->Finish();
  return out;
}

StreamResult Stream(inference::GRPCInferenceService::Stub* stub,
                    const std::vector<inference::ModelInferRequest>& requests) {
  grpc::ClientContext context;
  return Stream(stub, requests, &context);
}

class KServeServerTest : public ::testing::Test {
 protected:
  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    return stub_->ModelInfer(&context, request, response);
  }

  TestServer server_{TextOptions(), {}, TextConfig()};
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_ =
      inference::GRPCInferenceService::NewStub(server_.channel);
  std::unique_ptr<Engine> reference_ = MakeEngine(TextConfig(), TextOptions());
};

TEST_F(KServeServerTest, HealthMetadataAndConfig) {
  grpc::ClientContext c1, c2, c3, c4, c5, c6, c7;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  inference::ModelReadyRequest model_ready;
  model_ready.set_name("tiny");
  inference::ModelReadyResponse model_ready_response;
  ASSERT_TRUE(stub_->ModelReady(&c3, model_ready, &model_ready_response).ok());
  EXPECT_TRUE(model_ready_response.ready());
  model_ready.set_name("other");
  EXPECT_EQ(stub_->ModelReady(&c4, model_ready, &model_ready_response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  inference::ServerMetadataResponse server;
  ASSERT_TRUE(stub_->ServerMetadata(&c5, {}, &server).ok());
  EXPECT_EQ(server.name(), "mlkv-serve");
  EXPECT_THAT(server.extensions(), ::testing::Contains("binary_tensor_data"));

  inference::ModelMetadataRequest metadata_request;
  metadata_request.set_name("tiny");
  metadata_request.set_version("1");
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(stub_->ModelMetadata(&c6, metadata_request, &metadata).ok());
  EXPECT_EQ(metadata.name(), "tiny");
  EXPECT_THAT(metadata.versions(), ElementsAre("1"));
  std::map<std::string, std::string> inputs, outputs;
  for (const auto& t : metadata.inputs()) inputs[t.name()] = t.datatype();
  for (const auto& t : metadata.outputs()) outputs[t.name()] = t.datatype();
  EXPECT_EQ(inputs["text_input"], "BYTES");
  EXPECT_EQ(inputs["input_ids"], "INT32");
  EXPECT_EQ(inputs["stream"], "BOOL");
  EXPECT_EQ(inputs["sampling_parameters"], "BYTES");
  EXPECT_EQ(inputs["random_seed"], "UINT64");
  EXPECT_EQ(outputs["text_output"], "BYTES");
  EXPECT_EQ(outputs["output_ids"], "INT32");

  inference::ModelConfigRequest config_request;
  config_request.set_name("tiny");
  inference::ModelConfigResponse config;
  ASSERT_TRUE(stub_->ModelConfig(&c7, config_request, &config).ok());
  EXPECT_EQ(config.config().name(), "tiny");
  EXPECT_TRUE(config.config().model_transaction_policy().decoupled());
  EXPECT_EQ(config.config().max_batch_size(), 0);
  EXPECT_EQ(config.config().input_size(), metadata.inputs_size());
}

TEST_F(KServeServerTest, ModelInferEqualsTheEngine) {
  for (int i = 0; i < 3; ++i) {
    const std::vector<int32_t> prompt = Prompt(4 + 9 * i, i);
    inference::ModelInferResponse response;
    ASSERT_TRUE(Infer(GreedyIds("greedy", prompt, 10), &response).ok());
    const Direct direct = RunDirect(reference_.get(), GreedyEngineRequest(prompt, 10));
    EXPECT_EQ(response.model_name(), "tiny");
    EXPECT_EQ(response.model_version(), "1");
    EXPECT_EQ(response.id(), "greedy");
    EXPECT_THAT(GetOutput(response, "output_ids").ids,
                ElementsAreArray(direct.result.output_token_ids));
    // A token-id prompt is echoed as its text in front of the completion.
    const std::string prompt_text = *reference_->tokenizer()->Decode(prompt);
    EXPECT_EQ(GetOutput(response, "text_output").text, prompt_text + direct.text);
    ASSERT_NE(Param(response, "finish_reason"), nullptr);
    EXPECT_EQ(Param(response, "finish_reason")->string_param(), "length");
    EXPECT_EQ(Param(response, "completion_tokens")->int64_param(), 10);
    EXPECT_EQ(Param(response, "prompt_tokens")->int64_param(), static_cast<int64_t>(prompt.size()));
    EXPECT_EQ(Param(response, "triton_final_response"), nullptr);  // not a stream
  }
}

TEST_F(KServeServerTest, SeededSamplingFromTensorsEqualsTheEngine) {
  // TensorRT-LLM style scalar tensors, all in raw_input_contents as tritonclient sends them.
  const std::vector<int32_t> prompt = Prompt(12, 3);
  inference::ModelInferRequest request = Request("sampled");
  const auto add_raw = [&](const std::string& name, const std::string& type, int64_t n,
                           std::string raw) {
    Input(&request, name, type, n);
    request.add_raw_input_contents(std::move(raw));
  };
  const auto bytes = [](const auto& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  std::string ids;
  for (int32_t id : prompt) ids += bytes(id);
  add_raw("input_ids", "INT32", static_cast<int64_t>(prompt.size()), ids);
  add_raw("max_tokens", "INT32", 1, bytes(int32_t{14}));
  add_raw("temperature", "FP32", 1, bytes(0.8f));
  add_raw("top_k", "INT32", 1, bytes(int32_t{20}));
  add_raw("top_p", "FP32", 1, bytes(0.9f));
  add_raw("random_seed", "UINT64", 1, bytes(uint64_t{0}));  // 0 is a seed like any other
  add_raw("ignore_eos", "BOOL", 1, std::string(1, '\1'));
  add_raw("exclude_input_in_output", "BOOL", 1, std::string(1, '\1'));
  inference::ModelInferResponse response;
  ASSERT_TRUE(Infer(request, &response).ok());
  ASSERT_EQ(response.raw_output_contents_size(), 2);  // raw in, raw out

  EngineRequest engine_request = GreedyEngineRequest(prompt, 14);
  engine_request.sampling.temperature = 0.8f;
  engine_request.sampling.top_k = 20;
  engine_request.sampling.top_p = 0.9f;
  engine_request.sampling.seed = 0;
  const Direct direct = RunDirect(reference_.get(), engine_request);
  EXPECT_THAT(GetOutput(response, "output_ids").ids,
              ElementsAreArray(direct.result.output_token_ids));
  EXPECT_EQ(GetOutput(response, "text_output").text, direct.text);
}

TEST_F(KServeServerTest, StreamedRequestsInterleaveAndEachEqualsTheEngine) {
  constexpr int kRequests = 6;
  std::vector<inference::ModelInferRequest> requests;
  for (int i = 0; i < kRequests; ++i) {
    requests.push_back(GreedyIds("r" + std::to_string(i), Prompt(3 + 5 * i, i), 6 + i));
    AddBool(&requests.back(), "stream", true);
  }
  const StreamResult result = Stream(stub_.get(), requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = "r" + std::to_string(i);
    const auto responses = result.For(id);
    ASSERT_FALSE(responses.empty()) << id;
    std::vector<int32_t> ids;
    std::string text;
    for (size_t k = 0; k < responses.size(); ++k) {
      const inference::ModelInferResponse& r = responses[k]->infer_response();
      EXPECT_EQ(responses[k]->error_message(), "") << id;
      const Output out_ids = GetOutput(r, "output_ids");
      ids.insert(ids.end(), out_ids.ids.begin(), out_ids.ids.end());
      text += GetOutput(r, "text_output").text;
      const bool last = k + 1 == responses.size();
      ASSERT_NE(Param(r, "triton_final_response"), nullptr) << id;
      EXPECT_EQ(Param(r, "triton_final_response")->bool_param(), last) << id;
      EXPECT_EQ(Param(r, "finish_reason") != nullptr, last) << id;
    }
    const Direct direct =
        RunDirect(reference_.get(), GreedyEngineRequest(Prompt(3 + 5 * i, i), 6 + i));
    EXPECT_THAT(ids, ElementsAreArray(direct.result.output_token_ids)) << id;
    EXPECT_EQ(text, direct.text) << id;  // streams never echo the prompt
  }
}

TEST_F(KServeServerTest, ConcurrentCallsEachEqualTheEngine) {
  constexpr int kClients = 16;
  constexpr int kPerStream = 5;
  const auto prompt = [](int client, int k) { return Prompt(2 + (client * 7 + k) % 23, client); };
  const auto max_tokens = [](int client, int k) { return 4 + (client + k) % 9; };
  std::vector<StreamResult> streamed(kClients);
  std::vector<inference::ModelInferResponse> unary(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::vector<inference::ModelInferRequest> requests;
      for (int k = 0; k < kPerStream; ++k) {
        requests.push_back(GreedyIds(std::to_string(k), prompt(c, k), max_tokens(c, k)));
        AddBool(&requests.back(), "stream", k % 2 == 0);
        AddBool(&requests.back(), "exclude_input_in_output", true);
      }
      streamed[c] = Stream(stub_.get(), requests);
      EXPECT_TRUE(Infer(GreedyIds("u", prompt(c, kPerStream), 7), &unary[c]).ok());
    });
  }
  for (std::thread& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) {
    ASSERT_TRUE(streamed[c].status.ok()) << streamed[c].status.error_message();
    for (int k = 0; k < kPerStream; ++k) {
      std::vector<int32_t> ids;
      for (const auto* r : streamed[c].For(std::to_string(k))) {
        const std::vector<int32_t> part = GetOutput(r->infer_response(), "output_ids").ids;
        ids.insert(ids.end(), part.begin(), part.end());
      }
      const Direct direct =
          RunDirect(reference_.get(), GreedyEngineRequest(prompt(c, k), max_tokens(c, k)));
      EXPECT_THAT(ids, ElementsAreArray(direct.result.output_token_ids)) << c << "/" << k;
    }
    const Direct direct =
        RunDirect(reference_.get(), GreedyEngineRequest(prompt(c, kPerStream), 7));
    EXPECT_THAT(GetOutput(unary[c], "output_ids").ids,
                ElementsAreArray(direct.result.output_token_ids))
        << c;
  }
}

TEST_F(KServeServerTest, EmptyFinalResponseAndOneResponseWithoutStreaming) {
  inference::ModelInferRequest streamed = GreedyIds("s", Prompt(5, 1), 8);
  AddBool(&streamed, "stream", true);
  (*streamed.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
  inference::ModelInferRequest whole = GreedyIds("w", Prompt(5, 1), 8);
  AddBool(&whole, "exclude_input_in_output", true);
  const StreamResult result = Stream(stub_.get(), {streamed, whole});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();

  const auto s = result.For("s");
  ASSERT_GE(s.size(), 2u);
  const inference::ModelInferResponse& last = s.back()->infer_response();
  EXPECT_EQ(last.outputs_size(), 0);  // the empty final response
  EXPECT_TRUE(Param(last, "triton_final_response")->bool_param());
  for (size_t k = 0; k + 1 < s.size(); ++k) {
    EXPECT_GT(s[k]->infer_response().outputs_size(), 0);
    EXPECT_FALSE(Param(s[k]->infer_response(), "triton_final_response")->bool_param());
  }

  const auto w = result.For("w");
  ASSERT_EQ(w.size(), 1u);  // stream = false: the whole completion at once
  EXPECT_TRUE(Param(w[0]->infer_response(), "triton_final_response")->bool_param());
  const Direct direct = RunDirect(reference_.get(), GreedyEngineRequest(Prompt(5, 1), 8));
  EXPECT_THAT(GetOutput(w[0]->infer_response(), "output_ids").ids,
              ElementsAreArray(direct.result.output_token_ids));
}

TEST_F(KServeServerTest, TextInAndOutAcrossBothRpcs) {
  const std::string prompt = "Hello, w\xC3\xB6rld";
  inference::ModelInferRequest unary = Request("text");
  AddText(&unary, "text_input", prompt);
  AddText(&unary, "sampling_parameters", R"({"temperature": 0, "max_tokens": 12})");
  inference::ModelInferResponse response;
  const grpc::Status status = Infer(unary, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const Output text = GetOutput(response, "text_output");
  const Output ids = GetOutput(response, "output_ids");

  EngineRequest direct_request;
  direct_request.prompt_text = prompt;
  direct_request.max_tokens = 12;
  direct_request.sampling.temperature = 0.0f;
  const Direct direct = RunDirect(reference_.get(), direct_request);
  EXPECT_THAT(ids.ids, ElementsAreArray(direct.result.output_token_ids));
  EXPECT_EQ(text.text, prompt + direct.text);  // the vLLM backend echoes the prompt by default

  // The same request streamed: the pieces add up to the completion.
  inference::ModelInferRequest streamed = unary;
  AddBool(&streamed, "stream", true);
  const StreamResult result = Stream(stub_.get(), {streamed});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  std::string pieces;
  for (const auto* r : result.For("text"))
    pieces += GetOutput(r->infer_response(), "text_output").text;
  EXPECT_EQ(pieces, direct.text);
}

TEST_F(KServeServerTest, StopStringCutsTheText) {
  inference::ModelInferRequest free_run = Request("free");
  AddText(&free_run, "text_input", "abc");
  AddText(&free_run, "sampling_parameters",
          R"({"temperature": 0, "max_tokens": 20, "ignore_eos": true})");
  AddBool(&free_run, "exclude_input_in_output", true);
  inference::ModelInferResponse full;
  ASSERT_TRUE(Infer(free_run, &full).ok());
  const std::string text = GetOutput(full, "text_output").text;
  // A stop string taken from the middle of the free run's text: its fourth character.
  size_t start = 0;
  for (int i = 0; i < 3 && start < text.size(); ++i) {
    start += utf8::ScanSequence(std::string_view(text).substr(start)).length;
  }
  ASSERT_LT(start, text.size());
  const std::string stop =
      text.substr(start, utf8::ScanSequence(std::string_view(text).substr(start)).length);
  inference::ModelInferRequest stopped = free_run;
  (*stopped.mutable_parameters())["stop"].set_string_param(stop);
  inference::ModelInferResponse cut;
  ASSERT_TRUE(Infer(stopped, &cut).ok());
  EXPECT_EQ(GetOutput(cut, "text_output").text, text.substr(0, text.find(stop)));
  EXPECT_EQ(Param(cut, "finish_reason")->string_param(), "stop");
}

TEST_F(KServeServerTest, ModelInferErrors) {
  inference::ModelInferResponse response;
  inference::ModelInferRequest bad = GreedyIds("x", {1, 2}, 4);
  bad.set_model_name("gpt-5");
  grpc::Status status = Infer(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("model 'gpt-5' is not served here"));

  bad = GreedyIds("x", {1, 2}, 4);
  AddBool(&bad, "stream", true);
  status = Infer(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("input 'stream'"));

  // Too long for the model: the engine's own check, still INVALID_ARGUMENT naming max_tokens.
  bad = GreedyIds("x", {1, 2}, 5000);
  status = Infer(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_tokens"));
}

TEST_F(KServeServerTest, AStreamReportsBadRequestsAndGoesOn) {
  inference::ModelInferRequest bad = Request("bad");
  AddText(&bad, "sampling_parameters", R"({"top_p": 7})");
  AddIds(&bad, {1, 2, 3});
  inference::ModelInferRequest wrong_model = GreedyIds("wrong", {1}, 2);
  wrong_model.set_model_name("nope");
  const StreamResult result =
      Stream(stub_.get(), {GreedyIds("a", {4, 5}, 3), bad, wrong_model, GreedyIds("b", {6}, 3)});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.For("bad").size(), 1u);
  EXPECT_THAT(result.For("bad")[0]->error_message(),
              HasSubstr("input 'sampling_parameters' key 'top_p': top_p must be in (0, 1]"));
  ASSERT_EQ(result.For("wrong").size(), 1u);
  EXPECT_THAT(result.For("wrong")[0]->error_message(), HasSubstr("model 'nope'"));
  for (const std::string id : {"a", "b"}) {
    ASSERT_EQ(result.For(id).size(), 1u) << id;
    EXPECT_EQ(result.For(id)[0]->error_message(), "") << id;
    EXPECT_EQ(GetOutput(result.For(id)[0]->infer_response(), "output_ids").ids.size(), 3u);
  }
}

// Waits until the engine has no request left (running or waiting).
void ExpectEngineIdle(TestServer& server) {
  for (int i = 0; i < 500; ++i) {
    const EngineStats stats = server.server->engine()->GetStats();
    if (stats.scheduler.num_running == 0 && stats.scheduler.num_waiting == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "the engine still has requests";
}

TEST_F(KServeServerTest, CancelsAbortTheEngineRequests) {
  // A unary call whose deadline passes long before its 3000 tokens.
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    inference::ModelInferResponse response;
    const grpc::Status status =
        stub_->ModelInfer(&context, GreedyIds("long", Prompt(8, 1), 3000), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // A stream cancelled while two long requests run.
  {
    grpc::ClientContext context;
    auto stream = stub_->ModelStreamInfer(&context);
    for (const char* id : {"c1", "c2"}) {
      inference::ModelInferRequest r = GreedyIds(id, Prompt(8, 2), 3000);
      AddBool(&r, "stream", true);
      ASSERT_TRUE(stream->Write(r));
    }
    inference::ModelStreamInferResponse response;
    ASSERT_TRUE(stream->Read(&response));  // they run
    context.TryCancel();
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectEngineIdle(server_);
}

TEST_F(KServeServerTest, DrainTurnsReadinessOffAndRefusesInference) {
  server_.server->Drain(absl::ZeroDuration());
  grpc::ClientContext c1;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c1, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ModelInferResponse response;
  EXPECT_EQ(Infer(GreedyIds("late", {1}, 2), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  const StreamResult result = Stream(stub_.get(), {GreedyIds("late", {1}, 2)});
  ASSERT_TRUE(result.status.ok());
  ASSERT_EQ(result.For("late").size(), 1u);
  EXPECT_THAT(result.For("late")[0]->error_message(), HasSubstr("shutting down"));
}

TEST_F(KServeServerTest, ShutdownAbortsRequestsAndDoesNotWaitForIdleStreams) {
  grpc::ClientContext context;
  auto stream = stub_->ModelStreamInfer(&context);
  inference::ModelInferRequest request = GreedyIds("long", Prompt(8, 3), 3000);
  AddBool(&request, "stream", true);
  ASSERT_TRUE(stream->Write(request));
  inference::ModelStreamInferResponse response;
  ASSERT_TRUE(stream->Read(&response));  // it runs; the client keeps its side open
  const absl::Time start = absl::Now();
  std::thread shutdown([&] { server_.server->Shutdown(absl::Seconds(20)); });
  std::optional<inference::ModelStreamInferResponse> last;
  while (stream->Read(&response)) last = response;
  shutdown.join();
  // The request's last response came (aborted), and the shutdown went on without waiting for
  // the client to close the stream.
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(Param(last->infer_response(), "triton_final_response")->bool_param());
  EXPECT_EQ(Param(last->infer_response(), "finish_reason")->string_param(), "abort");
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  stream->Finish();  // cancelled by the server: its status says nothing here
}

TEST(KServeAuthTest, EveryRpcNeedsTheKey) {
  ServerOptions options;
  options.auth = *ApiKeyAuth::FromText("sesame\n");
  TestServer server(SmallOptions(), options);
  auto stub = inference::GRPCInferenceService::NewStub(server.channel);
  const auto context = [](grpc::ClientContext* c, const std::string& key) {
    if (!key.empty()) c->AddMetadata("authorization", "Bearer " + key);
  };
  for (const std::string key : {"", "wrong"}) {
    grpc::ClientContext c1, c2, c3, c4;
    context(&c1, key);
    context(&c2, key);
    context(&c3, key);
    context(&c4, key);
    inference::ServerLiveResponse live;
    EXPECT_EQ(stub->ServerLive(&c1, {}, &live).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    inference::ModelMetadataRequest metadata_request;
    metadata_request.set_name("tiny");
    inference::ModelMetadataResponse metadata;
    EXPECT_EQ(stub->ModelMetadata(&c2, metadata_request, &metadata).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    inference::ModelInferResponse response;
    EXPECT_EQ(stub->ModelInfer(&c3, GreedyIds("x", {1}, 2), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(Stream(stub.get(), {GreedyIds("x", {1}, 2)}, &c4).status.error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::ClientContext ok1, ok2;
  context(&ok1, "sesame");
  context(&ok2, "sesame");
  inference::ModelInferResponse response;
  EXPECT_TRUE(stub->ModelInfer(&ok1, GreedyIds("x", {1}, 2), &response).ok());
  EXPECT_EQ(GetOutput(response, "output_ids").ids.size(), 2u);
  EXPECT_FALSE(GetOutput(response, "text_output").present);  // no tokenizer: ids only
  const StreamResult streamed = Stream(stub.get(), {GreedyIds("x", {1}, 2)}, &ok2);
  EXPECT_TRUE(streamed.status.ok());
}

}  // namespace
}  // namespace mlkv::server::kserve
