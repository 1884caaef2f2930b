// ModelInferRequest -> InferRequest: the vLLM-backend and TensorRT-LLM-backend ways of asking,
// request parameters, defaults, and a test per class of bad input, each refused by name.
#include "server/kserve/infer_request.h"

#include <cmath>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace mlkv::server::kserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Tensor = inference::ModelInferRequest::InferInputTensor;

// A small model whose vocabulary is the random models' byte-level tokenizer (257 tokens).
ModelConfig Config() {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 2},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 257},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

class InferRequestTest : public ::testing::Test {
 protected:
  InferRequestTest() {
    auto tokenizer = Tokenizer::FromJson(ByteLevelTokenizerJson(config_)->dump());
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
  }

  // A request for the model with typed contents.
  inference::ModelInferRequest Request() {
    inference::ModelInferRequest r;
    r.set_model_name("m");
    r.set_id("req-1");
    return r;
  }
  // A text request for the model with `add` applied to it: one bad setting at a time.
  template <typename Add>
  inference::ModelInferRequest TextRequestWith(Add add) {
    inference::ModelInferRequest r = Request();
    Text(&r, "text_input", "x");
    add(&r);
    return r;
  }
  static Tensor* Input(inference::ModelInferRequest* r, const std::string& name,
                       const std::string& datatype, std::initializer_list<int64_t> shape) {
    Tensor* t = r->add_inputs();
    t->set_name(name);
    t->set_datatype(datatype);
    for (int64_t d : shape) t->add_shape(d);
    return t;
  }
  static void Text(inference::ModelInferRequest* r, const std::string& name,
                   const std::string& value) {
    Input(r, name, "BYTES", {1})->mutable_contents()->add_bytes_contents(value);
  }
  static void Bool(inference::ModelInferRequest* r, const std::string& name, bool value) {
    Input(r, name, "BOOL", {1})->mutable_contents()->add_bool_contents(value);
  }
  static void Int32(inference::ModelInferRequest* r, const std::string& name, int32_t value) {
    Input(r, name, "INT32", {1})->mutable_contents()->add_int_contents(value);
  }
  static void Fp32(inference::ModelInferRequest* r, const std::string& name, float value) {
    Input(r, name, "FP32", {1})->mutable_contents()->add_fp32_contents(value);
  }

  absl::StatusOr<InferRequest> Parse(const inference::ModelInferRequest& r,
                                     Rpc rpc = Rpc::kModelStreamInfer, bool tokenizer = true) {
    return ParseInferRequest(r, {"m", &config_, tokenizer ? tokenizer_.get() : nullptr}, rpc);
  }
  // Asserts that `r` is refused with INVALID_ARGUMENT and a message holding `substring`.
  void ExpectInvalid(const inference::ModelInferRequest& r, const std::string& substring,
                     Rpc rpc = Rpc::kModelStreamInfer, bool tokenizer = true) {
    absl::StatusOr<InferRequest> parsed = Parse(r, rpc, tokenizer);
    ASSERT_FALSE(parsed.ok()) << "accepted; expected: " << substring;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(substring));
  }

  const ModelConfig config_ = Config();
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(InferRequestTest, VllmBackendStyle) {
  inference::ModelInferRequest r = Request();
  Text(&r, "text_input", "Hello");
  Bool(&r, "stream", true);
  // As the vLLM backend's examples send it: numbers as strings too.
  Text(&r, "sampling_parameters",
       R"({"temperature": "0.5", "top_p": 0.9, "top_k": -1, "min_p": 0.05, "max_tokens": 20,
           "seed": 7, "stop": ["\n\n", ""], "ignore_eos": "true", "repetition_penalty": 1.1,
           "presence_penalty": 0.5, "frequency_penalty": -0.5, "stop_token_ids": [3, 4],
           "logit_bias": null})");
  auto parsed = Parse(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const EngineRequest& e = parsed->engine;
  EXPECT_EQ(e.prompt_text, "Hello");
  EXPECT_THAT(e.prompt_token_ids, IsEmpty());
  EXPECT_FLOAT_EQ(e.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(e.sampling.top_p, 0.9f);
  EXPECT_EQ(e.sampling.top_k, 0);  // vLLM's -1: all tokens
  EXPECT_FLOAT_EQ(e.sampling.min_p, 0.05f);
  EXPECT_EQ(e.max_tokens, 20);
  EXPECT_EQ(e.sampling.seed, 7u);
  EXPECT_THAT(e.stop_strings, ElementsAre("\n\n"));  // "" means nothing
  EXPECT_TRUE(e.ignore_eos);
  EXPECT_FLOAT_EQ(e.sampling.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(e.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(e.sampling.frequency_penalty, -0.5f);
  EXPECT_THAT(e.stop_token_ids, ElementsAre(3, 4));
  EXPECT_TRUE(parsed->stream);
  EXPECT_EQ(parsed->text_prefix, "");  // streams never echo the prompt
  EXPECT_EQ(parsed->response.id, "req-1");
  EXPECT_TRUE(parsed->response.text_output);
  EXPECT_TRUE(parsed->response.output_ids);
  EXPECT_EQ(parsed->response.encoding, Encoding::kContents);
  EXPECT_FALSE(parsed->empty_final_response);
}

TEST_F(InferRequestTest, TensorRtLlmBackendStyleWithRawContents) {
  inference::ModelInferRequest r = Request();
  std::string raw;
  const auto add = [&](const std::string& name, const std::string& datatype,
                       std::initializer_list<int64_t> shape, std::string bytes) {
    Input(&r, name, datatype, shape);
    r.add_raw_input_contents(std::move(bytes));
  };
  const auto bytes = [](const auto& value) {
    return std::string(reinterpret_cast<const char*>(&value), sizeof(value));
  };
  const auto strings = [](std::initializer_list<std::string> values) {
    std::string out;
    for (const std::string& v : values) {
      const uint32_t n = v.size();
      out.append(reinterpret_cast<const char*>(&n), 4);
      out += v;
    }
    return out;
  };
  add("text_input", "BYTES", {1, 1}, strings({"Hi there"}));
  add("max_tokens", "INT32", {1, 1}, bytes(int32_t{9}));
  add("temperature", "FP32", {1, 1}, bytes(0.0f));
  add("top_k", "INT32", {1, 1}, bytes(int32_t{5}));
  add("top_p", "FP64", {1, 1}, bytes(0.5));
  add("random_seed", "UINT64", {1, 1}, bytes(~uint64_t{0}));
  add("stop_words", "BYTES", {1, 2}, strings({"", "end"}));
  add("bad_words", "BYTES", {1, 1}, strings({""}));
  add("exclude_input_in_output", "BOOL", {1, 1}, std::string(1, '\1'));
  auto parsed = Parse(r, Rpc::kModelInfer);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const EngineRequest& e = parsed->engine;
  EXPECT_EQ(e.prompt_text, "Hi there");
  EXPECT_EQ(e.max_tokens, 9);
  EXPECT_TRUE(e.sampling.is_greedy());
  EXPECT_EQ(e.sampling.top_k, 5);
  EXPECT_FLOAT_EQ(e.sampling.top_p, 0.5f);
  EXPECT_EQ(e.sampling.seed, ~uint64_t{0});
  EXPECT_THAT(e.stop_strings, ElementsAre("end"));
  EXPECT_FALSE(parsed->stream);
  EXPECT_EQ(parsed->text_prefix, "");
  EXPECT_EQ(parsed->response.encoding, Encoding::kRaw);
}

TEST_F(InferRequestTest, TokenIdsDefaultsAndThePromptEcho) {
  inference::ModelInferRequest r = Request();
  Tensor* ids = Input(&r, "input_ids", "INT64", {1, 3});
  for (int64_t id : {72, 105, 33}) ids->mutable_contents()->add_int64_contents(id);
  auto parsed = Parse(r, Rpc::kModelInfer);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->engine.prompt_token_ids, ElementsAre(72, 105, 33));
  EXPECT_FALSE(parsed->engine.prompt_text.has_value());
  EXPECT_EQ(parsed->engine.max_tokens, 16);
  EXPECT_FLOAT_EQ(parsed->engine.sampling.temperature, 1.0f);
  EXPECT_FALSE(parsed->engine.sampling.seed.has_value());
  // Unary, not excluded: text_output starts with the prompt's text, as the vLLM backend's does.
  EXPECT_EQ(parsed->text_prefix, tokenizer_->Decode({72, 105, 33}).value());

  Bool(&r, "exclude_input_in_output", true);
  EXPECT_EQ(Parse(r, Rpc::kModelInfer)->text_prefix, "");

  // Without a tokenizer the outputs are the token ids only.
  inference::ModelInferRequest plain = Request();
  Input(&plain, "input_ids", "INT32", {1})->mutable_contents()->add_int_contents(5);
  auto no_text = Parse(plain, Rpc::kModelInfer, /*tokenizer=*/false);
  ASSERT_TRUE(no_text.ok()) << no_text.status();
  EXPECT_FALSE(no_text->response.text_output);
  EXPECT_TRUE(no_text->response.output_ids);
  EXPECT_EQ(no_text->text_prefix, "");
}

TEST_F(InferRequestTest, TextPromptEchoAndChosenOutputs) {
  inference::ModelInferRequest r = Request();
  Text(&r, "text_input", "Say:");
  r.add_outputs()->set_name("text_output");
  auto parsed = Parse(r, Rpc::kModelInfer);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->text_prefix, "Say:");
  EXPECT_TRUE(parsed->response.text_output);
  EXPECT_FALSE(parsed->response.output_ids);
  r.mutable_outputs(0)->set_name("output_ids");
  parsed = Parse(r, Rpc::kModelInfer);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->response.text_output);
  EXPECT_EQ(parsed->text_prefix, "");  // nothing to put it in
}

TEST_F(InferRequestTest, RequestParameters) {
  inference::ModelInferRequest r = Request();
  r.set_model_version("1");
  Text(&r, "text_input", "x");
  auto& p = *r.mutable_parameters();
  p["temperature"].set_double_param(0.25);
  p["max_tokens"].set_int64_param(3);
  p["seed"].set_uint64_param(11);
  p["top_k"].set_string_param("4");
  p["stop"].set_string_param("STOP");
  p["ignore_eos"].set_bool_param(true);
  p["priority"].set_uint64_param(2);
  p["triton_enable_empty_final_response"].set_bool_param(true);
  auto parsed = Parse(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FLOAT_EQ(parsed->engine.sampling.temperature, 0.25f);
  EXPECT_EQ(parsed->engine.max_tokens, 3);
  EXPECT_EQ(parsed->engine.sampling.seed, 11u);
  EXPECT_EQ(parsed->engine.sampling.top_k, 4);
  EXPECT_THAT(parsed->engine.stop_strings, ElementsAre("STOP"));
  EXPECT_TRUE(parsed->engine.ignore_eos);
  EXPECT_EQ(parsed->engine.priority, 2);
  EXPECT_TRUE(parsed->empty_final_response);
}

TEST_F(InferRequestTest, AnotherModelOrVersionIsNotFound) {
  inference::ModelInferRequest r = Request();
  Text(&r, "text_input", "x");
  r.set_model_name("other");
  EXPECT_EQ(Parse(r).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(Parse(r).status().message()), HasSubstr("model 'other'"));
  r.set_model_name("m");
  r.set_model_version("2");
  EXPECT_EQ(Parse(r).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(Parse(r).status().message()), HasSubstr("no version '2'"));
}

TEST_F(InferRequestTest, BadPrompts) {
  ExpectInvalid(Request(), "text_input: the request has no prompt");
  {
    inference::ModelInferRequest r = Request();
    Text(&r, "text_input", "x");
    Int32(&r, "input_ids", 5);
    ExpectInvalid(r, "input 'input_ids': give either text_input or input_ids");
  }
  {
    inference::ModelInferRequest r = Request();
    Text(&r, "text_input", "");
    ExpectInvalid(r, "input 'text_input': is empty");
  }
  {
    inference::ModelInferRequest r = Request();
    Text(&r, "text_input", "ok \xC3");
    ExpectInvalid(r, "input 'text_input': is not valid UTF-8 (at byte 3)");
  }
  {
    inference::ModelInferRequest r = Request();
    Text(&r, "text_input", "x");
    ExpectInvalid(r, "input 'text_input': the model has no tokenizer", Rpc::kModelInfer,
                  /*tokenizer=*/false);
  }
  {
    inference::ModelInferRequest r = Request();
    Input(&r, "text_input", "BYTES", {2})->mutable_contents()->add_bytes_contents("a");
    r.mutable_inputs(0)->mutable_contents()->add_bytes_contents("b");
    ExpectInvalid(r, "input 'text_input': must hold one element, holds 2");
  }
  {
    inference::ModelInferRequest r = Request();
    Input(&r, "input_ids", "INT32", {0});
    ExpectInvalid(r, "input 'input_ids': is empty");
  }
  {
    inference::ModelInferRequest r = Request();
    Tensor* ids = Input(&r, "input_ids", "INT32", {2});
    ids->mutable_contents()->add_int_contents(1);
    ids->mutable_contents()->add_int_contents(257);
    ExpectInvalid(r, "input 'input_ids': token id at index 1 is outside the vocabulary [0, 257)");
  }
  {
    inference::ModelInferRequest r = Request();
    Fp32(&r, "input_ids", 1.0f);
    ExpectInvalid(r, "input 'input_ids': datatype is \"FP32\", expected INT8");
  }
  {
    inference::ModelInferRequest r = Request();
    Input(&r, "text_input", "BYTES", {1});
    ExpectInvalid(r, "input 'text_input': contents hold 0 elements");
  }
}

TEST_F(InferRequestTest, BadSettings) {
  const auto with = [&](auto add) { return TextRequestWith(add); };
  using R = inference::ModelInferRequest*;
  ExpectInvalid(with([](R r) { Fp32(r, "top_p", 0.0f); }),
                "input 'top_p': top_p must be in (0, 1], got 0");
  ExpectInvalid(with([](R r) { Fp32(r, "temperature", NAN); }), "input 'temperature': temperature");
  ExpectInvalid(with([](R r) { Int32(r, "temperature", 1); }),
                "input 'temperature': datatype is \"INT32\", expected FP32 or FP64");
  ExpectInvalid(with([](R r) { Int32(r, "max_tokens", 0); }),
                "input 'max_tokens': must be in [1, 2147483647], got 0");
  ExpectInvalid(with([](R r) { Int32(r, "top_k", -2); }), "input 'top_k': must be in [-1,");
  ExpectInvalid(with([](R r) { Int32(r, "random_seed", -1); }),
                "input 'random_seed': must be in [0, 18446744073709551615], got -1");
  ExpectInvalid(with([](R r) { Bool(r, "max_tokens", true); }), "input 'max_tokens': datatype");
  ExpectInvalid(with([](R r) { Text(r, "bad_words", "x"); }),
                "input 'bad_words': banning words is not supported");
  ExpectInvalid(with([](R r) { Text(r, "stop_words", "\xff"); }),
                "input 'stop_words': stop string \"\\xff\" is not valid UTF-8 at byte 0");
  ExpectInvalid(with([](R r) { Int32(r, "stop_token_ids", 300); }),
                "input 'stop_token_ids': token id 300 is outside the vocabulary");
  ExpectInvalid(with([](R r) { Int32(r, "beam_width", 2); }), "input 'beam_width': unknown");
  // The same setting from two places.
  ExpectInvalid(with([](R r) {
                  Fp32(r, "temperature", 0.5f);
                  Text(r, "sampling_parameters", R"({"temperature": 0.7})");
                }),
                "temperature is already given by");
  ExpectInvalid(with([](R r) {
                  Int32(r, "random_seed", 1);
                  Int32(r, "seed", 1);
                }),
                "seed is already given by input '");
  // sampling_parameters.
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", "{not json"); }),
                "input 'sampling_parameters': is not a JSON object");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", "[1]"); }), "is not a JSON object");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"n": 2})"); }),
                "input 'sampling_parameters' key 'n': unknown; the settings are temperature,");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"top_p": "high"})"); }),
                "input 'sampling_parameters' key 'top_p': must be a number");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"max_tokens": 1.5})"); }),
                "key 'max_tokens': must be an integer");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"ignore_eos": "maybe"})"); }),
                "key 'ignore_eos': must be true or false");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"stop": {"a": 1}})"); }),
                "key 'stop': a JSON object of this shape fits no setting");
  ExpectInvalid(with([](R r) { Text(r, "sampling_parameters", R"({"stop": 5})"); }),
                "key 'stop': must be a string or a list of strings");
  ExpectInvalid(
      with([](R r) { Text(r, "sampling_parameters", R"({"stop_token_ids": ["a", 1]})"); }),
      "key 'stop_token_ids': a JSON array of this shape fits no setting");
}

TEST_F(InferRequestTest, StopStringsNeedATokenizer) {
  inference::ModelInferRequest r = Request();
  Int32(&r, "input_ids", 5);
  Text(&r, "stop_words", "end");
  ExpectInvalid(r, "input 'stop_words': stop strings need a tokenizer", Rpc::kModelInfer,
                /*tokenizer=*/false);
}

TEST_F(InferRequestTest, BadParameters) {
  const auto with = [&](const std::string& key, auto set) {
    return TextRequestWith(
        [&](inference::ModelInferRequest* r) { set(&(*r->mutable_parameters())[key]); });
  };
  using P = inference::InferParameter*;
  ExpectInvalid(with("sequence_id", [](P p) { p->set_int64_param(1); }),
                "parameter 'sequence_id': unknown; the parameters are");
  ExpectInvalid(with("temperature", [](P) {}), "parameter 'temperature': has no value");
  ExpectInvalid(with("temperature", [](P p) { p->set_bool_param(true); }),
                "parameter 'temperature': must be a number");
  ExpectInvalid(with("triton_enable_empty_final_response", [](P p) { p->set_int64_param(1); }),
                "parameter 'triton_enable_empty_final_response': must be a bool_param");
  ExpectInvalid(with("priority", [](P p) { p->set_int64_param(-1); }),
                "parameter 'priority': must be an integer in [0, 2^31-1]");
}

TEST_F(InferRequestTest, BadStreamingChoices) {
  inference::ModelInferRequest r = Request();
  Text(&r, "text_input", "x");
  Bool(&r, "stream", true);
  ExpectInvalid(r, "input 'stream': ModelInfer answers with one response", Rpc::kModelInfer);
  Bool(&r, "exclude_input_in_output", false);
  ExpectInvalid(r, "input 'exclude_input_in_output': must be true when streaming");
}

TEST_F(InferRequestTest, BadOutputsAndTensorParameters) {
  const auto with = [&](auto add) { return TextRequestWith(add); };
  using R = inference::ModelInferRequest*;
  ExpectInvalid(with([](R r) { r->add_outputs()->set_name("logits"); }),
                "output 'logits': unknown; the outputs are text_output and output_ids");
  ExpectInvalid(with([](R r) {
                  r->add_outputs()->set_name("output_ids");
                  r->add_outputs()->set_name("output_ids");
                }),
                "output 'output_ids': is requested twice");
  ExpectInvalid(with([](R r) {
                  auto* out = r->add_outputs();
                  out->set_name("text_output");
                  (*out->mutable_parameters())["classification"].set_int64_param(3);
                }),
                "output 'text_output': parameter 'classification' is not supported");
  ExpectInvalid(
      with([](R r) {
        (*r->mutable_inputs(0)->mutable_parameters())["shared_memory_region"].set_string_param(
            "shm");
      }),
      "input 'text_input': parameter 'shared_memory_region' is not supported");
  inference::ModelInferRequest ids = Request();
  Int32(&ids, "input_ids", 1);
  ids.add_outputs()->set_name("text_output");
  ExpectInvalid(ids, "output 'text_output': the model has no tokenizer; request output_ids",
                Rpc::kModelInfer, /*tokenizer=*/false);
}

}  // namespace
}  // namespace mlkv::server::kserve
