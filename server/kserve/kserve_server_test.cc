// KServe v2 end to end on a loopback port through generated C++ stubs, the answers:
// ModelInfer and ModelStreamInfer (decoupled) give the engine's own tokens and text for the same
// request and seed, with typed or raw tensors, streamed or whole, alone or concurrently.
#include <string>
#include <thread>
#include <vector>

#include "server/kserve/kserve_test_client.h"
#include "tokenizer/utf8.h"

namespace mlkv::server::kserve::e2e {
namespace {

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

}  // namespace
}  // namespace mlkv::server::kserve::e2e
