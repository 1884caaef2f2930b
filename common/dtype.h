// Element types of checkpoints and the KV cache, with their names and sizes.
#ifndef MLKV_COMMON_DTYPE_H_
#define MLKV_COMMON_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace mlkv {

enum class DType { kF32, kF16, kBF16 };

inline int64_t DTypeBytes(DType t) { return t == DType::kF32 ? 4 : 2; }

// Lower-case short names as used on the command line: "f32", "f16", "bf16".
inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "f32";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
  }
  return "?";
}

inline std::optional<DType> ParseDType(std::string_view name) {
  if (name == "f32" || name == "float32") return DType::kF32;
  if (name == "f16" || name == "float16") return DType::kF16;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  return std::nullopt;
}

}  // namespace mlkv

#endif  // MLKV_COMMON_DTYPE_H_
