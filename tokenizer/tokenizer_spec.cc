// Parsing tokenizer.json into a TokenizerSpec; see tokenizer_spec.h.
#include "tokenizer/tokenizer_spec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mlkv {
namespace {

using nlohmann::json;

// Ids index a table in the tokenizer, so an absurd id would be an absurd allocation; real
// vocabularies stay far below this.
constexpr int64_t kMaxId = (int64_t{1} << 24) - 1;
constexpr char kIdRange[] = "must be an integer id in [0, 2^24)";

absl::Status KeyError(const std::string& key, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", reason));
}

absl::Status Unsupported(const std::string& key, const std::string& what) {
  return absl::UnimplementedError(absl::StrCat(key, ": unsupported ", what));
}

// A short rendering of a JSON value for error messages.
std::string Show(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

bool IsAbsent(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null();
}

// An optional boolean member of `object` (named `path`.`key` in errors).
absl::Status ReadBool(const json& object, const std::string& path, const char* key, bool* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return KeyError(absl::StrCat(path, ".", key), "must be true or false, got " + Show(*it));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadType(const json& object, const std::string& path) {
  if (!object.is_object()) return KeyError(path, "must be an object or null, got " + Show(object));
  auto it = object.find("type");
  if (it == object.end() || !it->is_string()) {
    return KeyError(absl::StrCat(path, ".type"), "missing (a string naming the component)");
  }
  return it->get<std::string>();
}

absl::Status ParseNormalizer(const json& normalizer, const std::string& path, NormalizerKind* out) {
  if (normalizer.is_null()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string type, ReadType(normalizer, path));
  if (type == "NFC") {
    *out = NormalizerKind::kNfc;
    return absl::OkStatus();
  }
  if (type == "Sequence") {
    // NFC is idempotent, so a sequence of NFCs is NFC; anything else in it is unsupported.
    auto it = normalizer.find("normalizers");
    if (it == normalizer.end() || !it->is_array()) {
      return KeyError(absl::StrCat(path, ".normalizers"), "missing (an array)");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      RETURN_IF_ERROR(ParseNormalizer((*it)[i], absl::StrCat(path, ".normalizers[", i, "]"), out));
    }
    return absl::OkStatus();
  }
  return Unsupported(path, absl::StrCat("normalizer type \"", type, "\" (supported: NFC)"));
}

absl::Status ParsePreTokenizer(const json& root, TokenizerSpec* spec) {
  const char* path = "pre_tokenizer";
  if (IsAbsent(root, path)) {
    return Unsupported(path, "null pre-tokenizer (only ByteLevel is supported)");
  }
  const json& pre = root[path];
  ASSIGN_OR_RETURN(std::string type, ReadType(pre, path));
  if (type != "ByteLevel") {
    return Unsupported(
        path, absl::StrCat("pre-tokenizer type \"", type, "\" (only ByteLevel is supported)"));
  }
  bool trim_offsets = true;  // offsets only, which we do not report
  RETURN_IF_ERROR(ReadBool(pre, path, "add_prefix_space", &spec->add_prefix_space));
  RETURN_IF_ERROR(ReadBool(pre, path, "trim_offsets", &trim_offsets));
  RETURN_IF_ERROR(ReadBool(pre, path, "use_regex", &spec->use_regex));
  return absl::OkStatus();
}

// The decoder and post-processor: only settings that leave ids and text as ByteLevel makes them.
absl::Status CheckDecoderAndPostProcessor(const json& root) {
  if (IsAbsent(root, "decoder")) {
    return Unsupported("decoder", "null decoder (only ByteLevel is supported)");
  }
  ASSIGN_OR_RETURN(std::string decoder, ReadType(root["decoder"], "decoder"));
  if (decoder != "ByteLevel") {
    return Unsupported(
        "decoder", absl::StrCat("decoder type \"", decoder, "\" (only ByteLevel is supported)"));
  }
  if (!IsAbsent(root, "post_processor")) {
    // ByteLevel post-processing only trims offsets; the others add tokens we would not add.
    ASSIGN_OR_RETURN(std::string post, ReadType(root["post_processor"], "post_processor"));
    if (post != "ByteLevel") {
      return Unsupported("post_processor", absl::StrCat("post-processor type \"", post,
                                                        "\" (only ByteLevel or null)"));
    }
  }
  for (const char* key : {"truncation", "padding"}) {
    if (!IsAbsent(root, key)) return Unsupported(key, "setting (only null is supported)");
  }
  return absl::OkStatus();
}

absl::Status ParseVocab(const json& model, TokenizerSpec* spec) {
  auto it = model.find("vocab");
  if (it == model.end() || !it->is_object()) {
    return KeyError("model.vocab", "missing (an object of token -> id)");
  }
  spec->vocab.reserve(it->size());
  for (const auto& [token, id] : it->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxId) {
      return KeyError(absl::StrCat("model.vocab[\"", token, "\"]"),
                      absl::StrCat(kIdRange, ", got ", Show(id)));
    }
    spec->vocab.emplace(token, static_cast<int32_t>(id.get<int64_t>()));
  }
  return absl::OkStatus();
}

absl::Status ParseMerges(const json& model, TokenizerSpec* spec) {
  auto it = model.find("merges");
  if (it == model.end() || !it->is_array()) {
    return KeyError("model.merges",
                    "missing (an array of \"a b\" strings or [\"a\", \"b\"] pairs)");
  }
  spec->merges.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const json& merge = (*it)[i];
    const std::string key = absl::StrCat("model.merges[", i, "]");
    if (merge.is_string()) {
      // Exactly one space, as Hugging Face requires: tokens never contain a raw space.
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return KeyError(key, "must be two tokens separated by one space, got " + Show(merge));
      }
      spec->merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      spec->merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      return KeyError(key, "must be \"a b\" or [\"a\", \"b\"], got " + Show(merge));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseModel(const json& root, TokenizerSpec* spec) {
  if (IsAbsent(root, "model")) return KeyError("model", "missing (the BPE model)");
  const json& model = root["model"];
  if (!model.is_object()) return KeyError("model", "must be an object, got " + Show(model));
  // Hugging Face writes "type"; files from before it did are BPE when they have merges.
  if (model.contains("type")) {
    ASSIGN_OR_RETURN(std::string type, ReadType(model, "model"));
    if (type != "BPE") {
      return Unsupported("model.type", absl::StrCat("model \"", type, "\" (only BPE)"));
    }
  }
  if (!IsAbsent(model, "dropout")) {
    const json& dropout = model["dropout"];
    if (!dropout.is_number() || dropout.get<double>() != 0.0) {
      return Unsupported("model.dropout", "BPE dropout " + Show(dropout) + " (only null)");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!IsAbsent(model, key) &&
        !(model[key].is_string() && model[key].get_ref<const std::string&>().empty())) {
      return Unsupported(absl::StrCat("model.", key), Show(model[key]) + " (only null)");
    }
  }
  for (const char* key : {"byte_fallback", "ignore_merges"}) {
    bool value = false;
    RETURN_IF_ERROR(ReadBool(model, "model", key, &value));
    if (value) return Unsupported(absl::StrCat("model.", key), "true (only false)");
  }
  // unk_token and fuse_unk cannot matter: every byte has a token (checked by BpeModel::Create),
  // so BPE never meets an unknown symbol.
  RETURN_IF_ERROR(ParseVocab(model, spec));
  return ParseMerges(model, spec);
}

absl::Status ParseAddedTokens(const json& root, TokenizerSpec* spec) {
  if (IsAbsent(root, "added_tokens")) return absl::OkStatus();
  const json& tokens = root["added_tokens"];
  if (!tokens.is_array()) {
    return KeyError("added_tokens", "must be an array, got " + Show(tokens));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const json& entry = tokens[i];
    const std::string path = absl::StrCat("added_tokens[", i, "]");
    if (!entry.is_object()) return KeyError(path, "must be an object, got " + Show(entry));
    AddedToken token;
    auto id = entry.find("id");
    if (id == entry.end() || !id->is_number_integer() || id->get<int64_t>() < 0 ||
        id->get<int64_t>() > kMaxId) {
      return KeyError(path + ".id", kIdRange);
    }
    token.id = static_cast<int32_t>(id->get<int64_t>());
    auto content = entry.find("content");
    if (content == entry.end() || !content->is_string() ||
        content->get_ref<const std::string&>().empty()) {
      return KeyError(path + ".content", "must be a non-empty string");
    }
    token.content = content->get<std::string>();
    RETURN_IF_ERROR(ReadBool(entry, path, "special", &token.special));
    RETURN_IF_ERROR(ReadBool(entry, path, "single_word", &token.single_word));
    RETURN_IF_ERROR(ReadBool(entry, path, "lstrip", &token.lstrip));
    RETURN_IF_ERROR(ReadBool(entry, path, "rstrip", &token.rstrip));
    RETURN_IF_ERROR(ReadBool(entry, path, "normalized", &token.normalized));
    spec->added_tokens.push_back(std::move(token));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerSpec> ParseTokenizerJson(std::string_view json_text) {
  // Without exceptions: a malformed file is an error status, not a throw.
  const json root = json::parse(json_text.begin(), json_text.end(), nullptr,
                                /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError("not valid JSON (or not UTF-8)");
  }
  if (!root.is_object()) return absl::InvalidArgumentError("the top level must be a JSON object");
  TokenizerSpec spec;
  if (!IsAbsent(root, "normalizer")) {
    RETURN_IF_ERROR(ParseNormalizer(root["normalizer"], "normalizer", &spec.normalizer));
  }
  RETURN_IF_ERROR(ParsePreTokenizer(root, &spec));
  RETURN_IF_ERROR(CheckDecoderAndPostProcessor(root));
  RETURN_IF_ERROR(ParseModel(root, &spec));
  RETURN_IF_ERROR(ParseAddedTokens(root, &spec));
  return spec;
}

}  // namespace mlkv
