// What the KServe end-to-end tests share: a loopback server with the tiny text model, the
// generated stub, request builders, response readers, and the engine's own run of a request to
// compare against.
#ifndef MLKV_SERVER_KSERVE_KSERVE_TEST_CLIENT_H_
#define MLKV_SERVER_KSERVE_KSERVE_TEST_CLIENT_H_

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/collecting_observer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "model/random_model.h"
#include "server/testing/server_harness.h"

namespace mlkv::server::kserve::e2e {

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

// --- Building requests and reading responses (typed contents; a test covers raw) -----------

inline inference::ModelInferRequest Request(const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name("tiny");
  r.set_id(id);
  return r;
}

inline Tensor* Input(inference::ModelInferRequest* r, const std::string& name,
                     const std::string& type, int64_t n) {
  Tensor* t = r->add_inputs();
  t->set_name(name);
  t->set_datatype(type);
  t->add_shape(n);
  return t;
}

inline void AddIds(inference::ModelInferRequest* r, const std::vector<int32_t>& ids) {
  Tensor* t = Input(r, "input_ids", "INT32", static_cast<int64_t>(ids.size()));
  for (int32_t id : ids) t->mutable_contents()->add_int_contents(id);
}

inline void AddText(inference::ModelInferRequest* r, const std::string& name,
                    const std::string& text) {
  Input(r, name, "BYTES", 1)->mutable_contents()->add_bytes_contents(text);
}

inline void AddBool(inference::ModelInferRequest* r, const std::string& name, bool value) {
  Input(r, name, "BOOL", 1)->mutable_contents()->add_bool_contents(value);
}

// Greedy, ignoring EOS, `max_tokens` long: every run gives the same tokens.
inline inference::ModelInferRequest GreedyIds(const std::string& id,
                                              const std::vector<int32_t>& prompt, int max_tokens) {
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

inline Output GetOutput(const inference::ModelInferResponse& response, const std::string& name) {
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

inline const inference::InferParameter* Param(const inference::ModelInferResponse& response,
                                              const std::string& key) {
  auto it = response.parameters().find(key);
  return it == response.parameters().end() ? nullptr : &it->second;
}

// The engine's own run of a request, with its text.
struct Direct {
  RequestResult result;
  std::string text;
};

inline Direct RunDirect(Engine* engine, EngineRequest request) {
  auto observer = std::make_shared<CollectingObserver>();
  request.observer = observer;
  EXPECT_TRUE(engine->Submit(std::move(request)).ok());
  Direct out{observer->Wait(), ""};
  out.text = observer->text();
  return out;
}

inline EngineRequest GreedyEngineRequest(const std::vector<int32_t>& prompt, int max_tokens) {
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
inline StreamResult Stream(inference::GRPCInferenceService::Stub* stub,
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

inline StreamResult Stream(inference::GRPCInferenceService::Stub* stub,
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

// Waits until the engine has no request left (running or waiting).
inline void ExpectEngineIdle(TestServer& server) {
  for (int i = 0; i < 500; ++i) {
    const EngineStats stats = server.server->engine()->GetStats();
    if (stats.scheduler.num_running == 0 && stats.scheduler.num_waiting == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "the engine still has requests";
}

}  // namespace mlkv::server::kserve::e2e

#endif  // MLKV_SERVER_KSERVE_KSERVE_TEST_CLIENT_H_
