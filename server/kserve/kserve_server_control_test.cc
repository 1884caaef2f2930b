// KServe v2 end to end on a loopback port through generated C++ stubs, everything but the
// answers: metadata and readiness answer, bad requests are refused by name without harming the
// stream they came on, cancels and shutdown free the engine, a drain refuses inference, and API
// keys guard every RPC.
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "server/kserve/kserve_test_client.h"

namespace mlkv::server::kserve::e2e {
namespace {

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
}  // namespace mlkv::server::kserve::e2e
