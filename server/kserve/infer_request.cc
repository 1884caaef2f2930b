// ModelInferRequest -> InferRequest; see infer_request.h.
#include "server/kserve/infer_request.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/kserve/generation_settings.h"
#include "tokenizer/utf8.h"

namespace mlkv::server::kserve {
namespace {

constexpr char kTextInput[] = "text_input";
constexpr char kInputIds[] = "input_ids";
constexpr char kTextOutput[] = "text_output";
constexpr char kOutputIds[] = "output_ids";
constexpr char kEmptyFinalResponse[] = "triton_enable_empty_final_response";

absl::Status Invalid(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

std::string InputName(absl::string_view name) { return absl::StrCat("input '", name, "'"); }

// TensorRT-LLM's names for settings that have another name everywhere else.
absl::string_view SettingKeyOfTensor(absl::string_view name) {
  if (name == "random_seed") return "seed";
  if (name == "stop_words") return "stop";
  return name;
}

// The single element of a scalar input (shape [1], [1,1] or []).
template <typename T>
absl::StatusOr<T> Scalar(const InputTensor& input, absl::StatusOr<std::vector<T>> elements) {
  if (!elements.ok()) return elements.status();
  if (elements->size() != 1) {
    return Invalid(InputName(input.name()),
                   absl::StrCat("must hold one element, holds ", elements->size()));
  }
  return std::move((*elements)[0]);
}

absl::StatusOr<SettingValue> ReadSetting(const InputTensor& input, SettingKind kind) {
  switch (kind) {
    case SettingKind::kFloat: {
      ASSIGN_OR_RETURN(double value, Scalar(input, input.Floats()));
      return SettingValue(value);
    }
    case SettingKind::kInteger: {
      ASSIGN_OR_RETURN(absl::int128 value, Scalar(input, input.Integers()));
      return SettingValue(value);
    }
    case SettingKind::kBool: {
      ASSIGN_OR_RETURN(bool value, Scalar(input, input.Bools()));
      return SettingValue(value);
    }
    case SettingKind::kStrings: {
      ASSIGN_OR_RETURN(std::vector<std::string> value, input.Bytes());
      return SettingValue(std::move(value));
    }
    case SettingKind::kIntegers: {
      ASSIGN_OR_RETURN(std::vector<absl::int128> value, input.Integers());
      return SettingValue(std::move(value));
    }
  }
  return absl::InternalError("unhandled setting kind");
}

absl::StatusOr<SettingValue> FromParameter(absl::string_view source,
                                           const inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      return SettingValue(p.bool_param());
    case inference::InferParameter::kInt64Param:
      return SettingValue(absl::int128(p.int64_param()));
    case inference::InferParameter::kUint64Param:
      return SettingValue(absl::int128(p.uint64_param()));
    case inference::InferParameter::kDoubleParam:
      return SettingValue(p.double_param());
    case inference::InferParameter::kStringParam:
      return SettingValue(p.string_param());
    case inference::InferParameter::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return Invalid(source, "has no value");
}

// The prompt's token ids: each in the model's vocabulary.
absl::StatusOr<std::vector<int32_t>> ReadTokenIds(const InputTensor& input, int64_t vocab_size) {
  ASSIGN_OR_RETURN(const std::vector<absl::int128> values, input.Integers());
  if (values.empty()) return Invalid(InputName(input.name()), "is empty");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] >= vocab_size) {
      return Invalid(InputName(input.name()),
                     absl::StrCat("token id at index ", i, " is outside the vocabulary [0, ",
                                  vocab_size, ")"));
    }
    ids.push_back(static_cast<int32_t>(values[i]));
  }
  return ids;
}

absl::Status CheckText(absl::string_view source, const std::string& text) {
  if (text.empty()) return Invalid(source, "is empty");
  if (std::optional<size_t> bad = utf8::FirstInvalidOffset(text)) {
    return Invalid(source, absl::StrCat("is not valid UTF-8 (at byte ", *bad, ")"));
  }
  return absl::OkStatus();
}

// The outputs the request asks for; none named means all the model has.
absl::Status ReadOutputs(const inference::ModelInferRequest& request, const KServeModel& model,
                         ResponseShape* shape) {
  if (request.outputs().empty()) {
    shape->text_output = model.tokenizer != nullptr;
    shape->output_ids = true;
    return absl::OkStatus();
  }
  shape->text_output = shape->output_ids = false;
  for (const auto& output : request.outputs()) {
    const std::string source = absl::StrCat("output '", output.name(), "'");
    if (!output.parameters().empty()) {
      return Invalid(source, absl::StrCat("parameter '", output.parameters().begin()->first,
                                          "' is not supported"));
    }
    bool* wanted = output.name() == kTextOutput  ? &shape->text_output
                   : output.name() == kOutputIds ? &shape->output_ids
                                                 : nullptr;
    if (wanted == nullptr) {
      return Invalid(source,
                     absl::StrCat("unknown; the outputs are ", kTextOutput, " and ", kOutputIds));
    }
    if (*wanted) return Invalid(source, "is requested twice");
    if (wanted == &shape->text_output && model.tokenizer == nullptr) {
      return Invalid(source, absl::StrCat("the model has no tokenizer; request ", kOutputIds));
    }
    *wanted = true;
  }
  return absl::OkStatus();
}

// Request parameters: generation settings, and the two of Triton's that mean something here.
absl::Status ReadParameters(const inference::ModelInferRequest& request,
                            GenerationSettings* settings, InferRequest* out) {
  for (const auto& [key, param] : request.parameters()) {
    const std::string source = absl::StrCat("parameter '", key, "'");
    if (key == kEmptyFinalResponse) {
      if (param.parameter_choice_case() != inference::InferParameter::kBoolParam) {
        return Invalid(source, "must be a bool_param");
      }
      out->empty_final_response = param.bool_param();
    } else if (key == "priority") {
      ASSIGN_OR_RETURN(const SettingValue value, FromParameter(source, param));
      const absl::int128* priority = std::get_if<absl::int128>(&value);
      if (priority == nullptr || *priority < 0 || *priority > INT32_MAX) {
        return Invalid(source, "must be an integer in [0, 2^31-1] (lower is more urgent)");
      }
      out->engine.priority = static_cast<int32_t>(*priority);
    } else if (GenerationSettings::KindOf(key)) {
      ASSIGN_OR_RETURN(const SettingValue value, FromParameter(source, param));
      RETURN_IF_ERROR(settings->Set(key, value, source));
    } else {
      return Invalid(source,
                     absl::StrCat("unknown; the parameters are ", kEmptyFinalResponse,
                                  ", priority and the settings ", GenerationSettings::AllKeys()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckModel(const KServeModel& model, const std::string& name,
                        const std::string& version) {
  if (name != model.name) {
    return absl::NotFoundError(absl::StrCat("model '", name,
                                            "' is not served here; this server "
                                            "serves '",
                                            model.name, "'"));
  }
  if (!version.empty() && version != kModelVersion) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version '", version,
                                            "'; its only version is ", kModelVersion));
  }
  return absl::OkStatus();
}

absl::StatusOr<InferRequest> ParseInferRequest(const inference::ModelInferRequest& request,
                                               const KServeModel& model, Rpc rpc) {
  RETURN_IF_ERROR(CheckModel(model, request.model_name(), request.model_version()));
  InferRequest out;
  out.response.id = request.id();
  out.response.encoding =
      request.raw_input_contents().empty() ? Encoding::kContents : Encoding::kRaw;
  GenerationSettings settings(&out.engine);

  ASSIGN_OR_RETURN(const std::vector<InputTensor> inputs, ReadInputs(request));
  std::optional<std::string> text;
  std::optional<std::vector<int32_t>> ids;
  std::optional<bool> exclude_input;
  for (const InputTensor& input : inputs) {
    const std::string source = InputName(input.name());
    if (!input.parameters().empty()) {
      return Invalid(source, absl::StrCat("parameter '", input.parameters().begin()->first,
                                          "' is not supported (nor is shared memory)"));
    }
    if (input.name() == kTextInput) {
      ASSIGN_OR_RETURN(text, Scalar(input, input.Bytes()));
    } else if (input.name() == kInputIds) {
      ASSIGN_OR_RETURN(ids, ReadTokenIds(input, model.config->vocab_size));
    } else if (input.name() == "stream") {
      ASSIGN_OR_RETURN(out.stream, Scalar(input, input.Bools()));
    } else if (input.name() == "exclude_input_in_output") {
      ASSIGN_OR_RETURN(exclude_input, Scalar(input, input.Bools()));
    } else if (input.name() == "sampling_parameters") {
      ASSIGN_OR_RETURN(const std::string json, Scalar(input, input.Bytes()));
      RETURN_IF_ERROR(settings.SetFromJson(json, source));
    } else if (input.name() == "bad_words") {
      // TensorRT-LLM clients send [""] for "none"; the engine bans no words.
      ASSIGN_OR_RETURN(const std::vector<std::string> words, input.Bytes());
      for (const std::string& word : words) {
        if (!word.empty()) return Invalid(source, "banning words is not supported");
      }
    } else if (const absl::string_view key = SettingKeyOfTensor(input.name());
               const std::optional<SettingKind> kind = GenerationSettings::KindOf(key)) {
      ASSIGN_OR_RETURN(const SettingValue value, ReadSetting(input, *kind));
      RETURN_IF_ERROR(settings.Set(key, value, source));
    } else {
      return Invalid(
          source,
          absl::StrCat(
              "unknown; the inputs are text_input, input_ids, stream, exclude_input_in_output, "
              "sampling_parameters, bad_words, random_seed, stop_words and the settings ",
              GenerationSettings::AllKeys()));
    }
  }
  RETURN_IF_ERROR(ReadParameters(request, &settings, &out));
  RETURN_IF_ERROR(ReadOutputs(request, model, &out.response));

  // The prompt: exactly one form.
  if (text && ids) {
    return Invalid(InputName(kInputIds), "give either text_input or input_ids, not both");
  }
  if (ids) {
    out.engine.prompt_token_ids = *std::move(ids);
  } else if (text) {
    RETURN_IF_ERROR(CheckText(InputName(kTextInput), *text));
    if (model.tokenizer == nullptr) {
      return Invalid(InputName(kTextInput), "the model has no tokenizer; send input_ids");
    }
    out.engine.prompt_text = *text;
  } else {
    return absl::InvalidArgumentError(
        "text_input: the request has no prompt; give text_input (BYTES) or input_ids (INT32)");
  }
  if (!out.engine.stop_strings.empty() && model.tokenizer == nullptr) {
    return Invalid(settings.SourceOf("stop"),
                   "stop strings need a tokenizer, and the model has none; use stop_token_ids");
  }
  for (const int32_t id : out.engine.stop_token_ids) {
    if (id >= model.config->vocab_size) {
      return Invalid(settings.SourceOf("stop_token_ids"),
                     absl::StrCat("token id ", id, " is outside the vocabulary [0, ",
                                  model.config->vocab_size, ")"));
    }
  }

  // Streaming and echoing the prompt, as Triton's vLLM backend has them.
  if (out.stream && rpc == Rpc::kModelInfer) {
    return Invalid(InputName("stream"),
                   "ModelInfer answers with one response; stream with ModelStreamInfer");
  }
  if (out.stream && exclude_input == false) {
    return Invalid(InputName("exclude_input_in_output"),
                   "must be true when streaming: the prompt is not streamed back");
  }
  if (!exclude_input.value_or(out.stream) && out.response.text_output) {
    if (text) {
      out.text_prefix = *text;
    } else {
      absl::StatusOr<std::string> decoded = model.tokenizer->Decode(out.engine.prompt_token_ids);
      if (!decoded.ok()) return Invalid(InputName(kInputIds), decoded.status().message());
      out.text_prefix = *std::move(decoded);
    }
  }
  return out;
}

}  // namespace mlkv::server::kserve
