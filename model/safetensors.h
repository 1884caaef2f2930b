// Reading (memory-mapped, fully validated) and writing of safetensors files: an 8-byte
// little-endian header length, a JSON header, then the tensors' bytes.
#ifndef MLKV_MODEL_SAFETENSORS_H_
#define MLKV_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace mlkv {

// One tensor as the header describes it. Offsets are relative to the start of the data section
// (the byte after the header) and have been checked to lie inside the file.
struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype_name;      // as in the header: "F32", "BF16", "BOOL", ...
  std::optional<DType> dtype;  // set only for the dtypes the engine computes with
  std::vector<int64_t> shape;
  int64_t num_elements = 0;
  int64_t data_begin = 0;
  int64_t data_end = 0;  // data_end - data_begin == num_elements * element size
};

// A memory-mapped safetensors file. Open() checks the whole header against the file size, so
// that later reads of any listed tensor stay in bounds. Tensors of dtypes the engine does not
// compute with (e.g. the BOOL `attention.bias` buffers of older Pythia files) are listed, so the
// caller can decide to ignore them; reading them as floats is the caller's error to report.
// Immutable after Open(): safe to read from several threads.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Sorted by name.
  const std::map<std::string, SafetensorsTensorInfo, std::less<>>& tensors() const {
    return tensors_;
  }
  // The optional `__metadata__` string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Non-owning; nullptr when the file has no tensor of that name.
  const SafetensorsTensorInfo* Find(std::string_view name) const;
  // The tensor's raw little-endian bytes, valid while this object lives.
  std::span<const uint8_t> Bytes(const SafetensorsTensorInfo& info) const;

 private:
  SafetensorsFile(std::string path, const uint8_t* map, size_t map_size, int64_t data_start);

  std::string path_;
  const uint8_t* map_;  // the whole file, read-only mapping; owned (munmap in the destructor)
  size_t map_size_;
  int64_t data_start_;  // 8 + header length
  std::map<std::string, SafetensorsTensorInfo, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: `data` holds num_elements * DTypeBytes(dtype) little-endian bytes.
struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Writes a safetensors file the reference library would write: header keys sorted, the JSON
// padded with spaces to a multiple of 8 bytes, tensors laid out largest element size first (then
// by name) so each starts at a multiple of its element size. Writes to a temporary file and renames
// it into place, so a failed write never leaves a truncated `path`.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Element conversions between float32 and a stored dtype (round to nearest even for F16/BF16).
std::vector<uint8_t> EncodeFloats(std::span<const float> values, DType dtype);
// `bytes` must hold a whole number of elements; returns bytes.size() / DTypeBytes(dtype) floats.
std::vector<float> DecodeFloats(std::span<const uint8_t> bytes, DType dtype);

// The safetensors spelling of a dtype: "F32", "F16", "BF16".
std::string_view SafetensorsDTypeName(DType dtype);

}  // namespace mlkv

#endif  // MLKV_MODEL_SAFETENSORS_H_
