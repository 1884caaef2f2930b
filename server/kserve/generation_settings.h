// The sampling and stopping settings of a KServe request, which clients give in any of three
// places: as input tensors (Triton's TensorRT-LLM backend: `temperature`, `max_tokens`, ...), as
// keys of the JSON string in the `sampling_parameters` input (Triton's vLLM backend), or as
// request parameters (KServe's `parameters` map). One vocabulary serves all three.
#ifndef MLKV_SERVER_KSERVE_GENERATION_SETTINGS_H_
#define MLKV_SERVER_KSERVE_GENERATION_SETTINGS_H_

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/engine_request.h"

namespace mlkv::server::kserve {

// A value as a source gave it, before it is checked against its setting: JSON and request
// parameters give any of these; a tensor gives the one its setting's kind asks for.
using SettingValue = std::variant<bool, absl::int128, double, std::string, std::vector<std::string>,
                                  std::vector<absl::int128>>;

// What a setting's value is, which says how to read it from a tensor.
enum class SettingKind {
  kFloat,     // one FP32/FP64 element; in JSON a number or a numeric string
  kInteger,   // one integer element; in JSON an integer or an integer string
  kBool,      // one BOOL element; in JSON true/false or "true"/"false"
  kStrings,   // BYTES elements, any number; in JSON a string or a list of strings
  kIntegers,  // integer elements, any number; in JSON an integer or a list of integers
};

// The settings, each given at most once:
//   temperature top_p top_k min_p repetition_penalty presence_penalty frequency_penalty
//   (SamplingParams' ranges; top_k -1 means all tokens, as in vLLM, like 0)
//   seed (0 to 2^64-1)  max_tokens (>= 1)  ignore_eos  stop (strings)  stop_token_ids
// Settings not given keep the engine's defaults (max_tokens 16, temperature 1, ...).
class GenerationSettings {
 public:
  // The kind of the setting `key`; nullopt for a key that is not a setting.
  static std::optional<SettingKind> KindOf(absl::string_view key);
  // The names of every setting, for error messages.
  static std::string AllKeys();

  // Settings are written into `request`, which must outlive this.
  explicit GenerationSettings(EngineRequest* request) : request_(request) {}

  // Writes `value` as setting `key`. `source` says where the value came from ("input 'top_k'")
  // and starts every error: InvalidArgument when the key was given before, from any source, or
  // the value is of the wrong type or out of range.
  absl::Status Set(absl::string_view key, const SettingValue& value, absl::string_view source);

  // Sets every key of the JSON object `json` (the sampling_parameters input): InvalidArgument
  // for text that is not a JSON object and for unknown keys. Keys whose value is null or an
  // empty list are skipped: clients send those for "the default".
  absl::Status SetFromJson(absl::string_view json, absl::string_view source);

  // Where `key` was given (the source passed to Set); the key itself when it was not.
  std::string SourceOf(absl::string_view key) const;

 private:
  EngineRequest* request_;                                 // not owned
  absl::flat_hash_map<std::string, std::string> sources_;  // key -> where it was given
};

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_GENERATION_SETTINGS_H_
