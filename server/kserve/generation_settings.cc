// Reading and checking generation settings from tensors, JSON and parameters; see
// generation_settings.h.
#include "server/kserve/generation_settings.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer/utf8.h"

namespace mlkv::server::kserve {
namespace {

// absl::StrCat takes no int128.
std::string Str(absl::int128 value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// Conversions of a SettingValue to what a setting holds. Errors say what was expected; Set puts
// the source in front.

absl::StatusOr<double> AsFloat(const SettingValue& value) {
  if (const double* d = std::get_if<double>(&value)) return *d;
  if (const absl::int128* i = std::get_if<absl::int128>(&value)) {
    return static_cast<double>(*i);
  }
  double parsed;
  if (const std::string* s = std::get_if<std::string>(&value);
      s != nullptr && absl::SimpleAtod(*s, &parsed)) {
    return parsed;
  }
  return absl::InvalidArgumentError("must be a number");
}

absl::StatusOr<absl::int128> AsInteger(const SettingValue& value, absl::int128 min,
                                       absl::int128 max) {
  absl::int128 out;
  if (const absl::int128* i = std::get_if<absl::int128>(&value)) {
    out = *i;
  } else if (const std::string* s = std::get_if<std::string>(&value);
             s == nullptr || !absl::SimpleAtoi(*s, &out)) {
    return absl::InvalidArgumentError("must be an integer");
  }
  if (out < min || out > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be in [", Str(min), ", ", Str(max), "], got ", Str(out)));
  }
  return out;
}

absl::StatusOr<bool> AsBool(const SettingValue& value) {
  if (const bool* b = std::get_if<bool>(&value)) return *b;
  if (const std::string* s = std::get_if<std::string>(&value)) {
    const std::string lower = absl::AsciiStrToLower(*s);
    if (lower == "true") return true;
    if (lower == "false") return false;
  }
  return absl::InvalidArgumentError("must be true or false");
}

absl::StatusOr<std::vector<std::string>> AsStrings(const SettingValue& value) {
  if (const std::string* s = std::get_if<std::string>(&value)) {
    return std::vector<std::string>{*s};
  }
  if (const auto* list = std::get_if<std::vector<std::string>>(&value)) return *list;
  return absl::InvalidArgumentError("must be a string or a list of strings");
}

absl::StatusOr<std::vector<absl::int128>> AsIntegers(const SettingValue& value) {
  if (const absl::int128* i = std::get_if<absl::int128>(&value)) {
    return std::vector<absl::int128>{*i};
  }
  if (const auto* list = std::get_if<std::vector<absl::int128>>(&value)) return *list;
  return absl::InvalidArgumentError("must be an integer or a list of integers");
}

constexpr absl::int128 kInt32Max = std::numeric_limits<int32_t>::max();

// Writes a value into the request; the sampling fields are checked by SamplingParams itself,
// so that the ranges live in one place.
using Apply = absl::Status (*)(const SettingValue&, EngineRequest*);

template <float SamplingParams::*field>
absl::Status ApplySamplingFloat(const SettingValue& value, EngineRequest* r) {
  ASSIGN_OR_RETURN(const double x, AsFloat(value));
  r->sampling.*field = static_cast<float>(x);
  return r->sampling.Validate();
}

struct Setting {
  absl::string_view key;
  SettingKind kind;
  Apply apply;
};

const Setting kSettings[] = {
    {"temperature", SettingKind::kFloat, &ApplySamplingFloat<&SamplingParams::temperature>},
    {"top_p", SettingKind::kFloat, &ApplySamplingFloat<&SamplingParams::top_p>},
    {"min_p", SettingKind::kFloat, &ApplySamplingFloat<&SamplingParams::min_p>},
    {"repetition_penalty", SettingKind::kFloat,
     &ApplySamplingFloat<&SamplingParams::repetition_penalty>},
    {"presence_penalty", SettingKind::kFloat,
     &ApplySamplingFloat<&SamplingParams::presence_penalty>},
    {"frequency_penalty", SettingKind::kFloat,
     &ApplySamplingFloat<&SamplingParams::frequency_penalty>},
    {"top_k", SettingKind::kInteger,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       // vLLM spells "all tokens" -1; the engine 0.
       ASSIGN_OR_RETURN(const absl::int128 k, AsInteger(value, -1, kInt32Max));
       r->sampling.top_k = k < 0 ? 0 : static_cast<int32_t>(k);
       return absl::OkStatus();
     }},
    {"seed", SettingKind::kInteger,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       ASSIGN_OR_RETURN(const absl::int128 seed,
                        AsInteger(value, 0, std::numeric_limits<uint64_t>::max()));
       r->sampling.seed = static_cast<uint64_t>(seed);
       return absl::OkStatus();
     }},
    {"max_tokens", SettingKind::kInteger,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       ASSIGN_OR_RETURN(const absl::int128 n, AsInteger(value, 1, kInt32Max));
       r->max_tokens = static_cast<int32_t>(n);
       return absl::OkStatus();
     }},
    {"ignore_eos", SettingKind::kBool,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       ASSIGN_OR_RETURN(r->ignore_eos, AsBool(value));
       return absl::OkStatus();
     }},
    {"stop", SettingKind::kStrings,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       ASSIGN_OR_RETURN(const std::vector<std::string> stops, AsStrings(value));
       for (const std::string& stop : stops) {
         // An empty stop string would match at once; clients send [""] to mean "none".
         if (stop.empty()) continue;
         if (std::optional<size_t> bad = utf8::FirstInvalidOffset(stop)) {
           return absl::InvalidArgumentError(absl::StrCat("stop string \"", absl::CHexEscape(stop),
                                                          "\" is not valid UTF-8 at byte ", *bad));
         }
         r->stop_strings.push_back(stop);
       }
       return absl::OkStatus();
     }},
    {"stop_token_ids", SettingKind::kIntegers,
     [](const SettingValue& value, EngineRequest* r) -> absl::Status {
       ASSIGN_OR_RETURN(const std::vector<absl::int128> ids, AsIntegers(value));
       for (const absl::int128 id : ids) {
         // The vocabulary's bound is the engine's to check; this keeps the value an int32.
         if (id < 0 || id > kInt32Max) {
           return absl::InvalidArgumentError(
               absl::StrCat("token id ", Str(id), " is negative or above 2^31-1"));
         }
         r->stop_token_ids.push_back(static_cast<int32_t>(id));
       }
       return absl::OkStatus();
     }},
};

const Setting* Find(absl::string_view key) {
  for (const Setting& s : kSettings) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

// A JSON value as a SettingValue; nullopt for JSON that no setting takes (objects, nested or
// mixed lists).
std::optional<SettingValue> FromJson(const nlohmann::json& j) {
  if (j.is_boolean()) return SettingValue(j.get<bool>());
  if (j.is_number_unsigned()) return SettingValue(absl::int128(j.get<uint64_t>()));
  if (j.is_number_integer()) return SettingValue(absl::int128(j.get<int64_t>()));
  if (j.is_number_float()) return SettingValue(j.get<double>());
  if (j.is_string()) return SettingValue(j.get<std::string>());
  if (!j.is_array()) return std::nullopt;
  if (std::all_of(j.begin(), j.end(), [](const auto& e) { return e.is_string(); })) {
    return SettingValue(j.get<std::vector<std::string>>());
  }
  std::vector<absl::int128> ints;
  for (const nlohmann::json& e : j) {
    if (e.is_number_unsigned()) {
      ints.push_back(e.get<uint64_t>());
    } else if (e.is_number_integer()) {
      ints.push_back(e.get<int64_t>());
    } else {
      return std::nullopt;
    }
  }
  return SettingValue(std::move(ints));
}

}  // namespace

std::optional<SettingKind> GenerationSettings::KindOf(absl::string_view key) {
  const Setting* setting = Find(key);
  if (setting == nullptr) return std::nullopt;
  return setting->kind;
}

std::string GenerationSettings::AllKeys() {
  return absl::StrJoin(kSettings, ", ",
                       [](std::string* out, const Setting& s) { absl::StrAppend(out, s.key); });
}

absl::Status GenerationSettings::Set(absl::string_view key, const SettingValue& value,
                                     absl::string_view source) {
  const Setting* setting = Find(key);
  if (setting == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unknown; the settings are ", AllKeys()));
  }
  const auto [previous, inserted] = sources_.try_emplace(key, source);
  if (!inserted) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", key, " is already given by ", previous->second));
  }
  if (absl::Status s = setting->apply(value, request_); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return absl::OkStatus();
}

std::string GenerationSettings::SourceOf(absl::string_view key) const {
  const auto it = sources_.find(key);
  return it == sources_.end() ? std::string(key) : it->second;
}

absl::Status GenerationSettings::SetFromJson(absl::string_view json, absl::string_view source) {
  // Parsed without exceptions (a failure is a discarded value), and every get<> below follows a
  // check of the type, so nothing throws.
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": is not a JSON object"));
  }
  for (const auto& [key, j] : parsed.items()) {
    // As if the key were not there: what clients send for "the default".
    if (j.is_null() || (j.is_array() && j.empty())) continue;
    const std::string key_source = absl::StrCat(source, " key '", key, "'");
    std::optional<SettingValue> value = FromJson(j);
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat(key_source, ": a JSON ", j.type_name(), " of this shape fits no setting"));
    }
    RETURN_IF_ERROR(Set(key, *value, key_source));
  }
  return absl::OkStatus();
}

}  // namespace mlkv::server::kserve
