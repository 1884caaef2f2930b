// The safetensors reader and writer; see safetensors.h. The reader treats the file as hostile:
// every number in the header is checked before it is used to index the mapping.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/half.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mlkv {
namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a larger length is corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Element sizes of every dtype the format defines, so that sizes can be validated even for
// tensors the engine will not read.
std::optional<int64_t> ElementBytes(std::string_view dtype_name) {
  struct Size {
    std::string_view name;
    int64_t bytes;
  };
  static constexpr Size kSizes[] = {{"BOOL", 1},    {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1},
                                    {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
                                    {"BF16", 2},    {"I32", 4}, {"U32", 4}, {"F32", 4},
                                    {"F64", 8},     {"I64", 8}, {"U64", 8}};
  for (const Size& size : kSizes) {
    if (size.name == dtype_name) return size.bytes;
  }
  return std::nullopt;
}

std::optional<DType> EngineDType(std::string_view dtype_name) {
  if (dtype_name == "F32") return DType::kF32;
  if (dtype_name == "F16") return DType::kF16;
  if (dtype_name == "BF16") return DType::kBF16;
  return std::nullopt;
}

// JSON text of a header value for error messages; never throws on odd bytes.
std::string Show(const json& j) {
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Reads a non-negative integer that fits int64 from a JSON number.
std::optional<int64_t> NonNegativeInt(const json& j) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

class HeaderParser {
 public:
  HeaderParser(const std::string& path, int64_t data_size) : path_(path), data_size_(data_size) {}

  absl::Status Error(const std::string& tensor, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor \"", tensor, "\": ", what));
  }

  absl::StatusOr<SafetensorsTensorInfo> ParseTensor(const std::string& name, const json& entry) {
    SafetensorsTensorInfo info;
    info.name = name;
    if (!entry.is_object()) return Error(name, "header entry is not an object: " + Show(entry));
    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) {
      return Error(name, "\"dtype\" is missing or not a string");
    }
    info.dtype_name = dtype->get<std::string>();
    std::optional<int64_t> element_bytes = ElementBytes(info.dtype_name);
    if (!element_bytes) return Error(name, "unknown dtype \"" + info.dtype_name + "\"");
    info.dtype = EngineDType(info.dtype_name);

    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) {
      return Error(name, "\"shape\" is missing or not an array");
    }
    int64_t elements = 1;
    for (const json& dim : *shape) {
      std::optional<int64_t> d = NonNegativeInt(dim);
      if (!d) {
        return Error(name, "shape " + Show(*shape) +
                               " has a dim that is not a non-negative "
                               "integer");
      }
      if (__builtin_mul_overflow(elements, *d, &elements)) {
        return Error(name, "shape " + Show(*shape) + " overflows");
      }
      info.shape.push_back(*d);
    }
    info.num_elements = elements;
    int64_t expected_bytes;
    if (__builtin_mul_overflow(elements, *element_bytes, &expected_bytes)) {
      return Error(name, "shape " + Show(*shape) + " overflows");
    }

    auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
      return Error(name, "\"data_offsets\" is missing or not [begin, end]");
    }
    std::optional<int64_t> begin = NonNegativeInt((*offsets)[0]);
    std::optional<int64_t> end = NonNegativeInt((*offsets)[1]);
    if (!begin || !end) {
      return Error(name, "data_offsets " + Show(*offsets) + " are not non-negative integers");
    }
    if (*begin > *end) return Error(name, "data_offsets " + Show(*offsets) + ": begin > end");
    if (*end > data_size_) {
      return Error(name, absl::StrCat("data_offsets ", Show(*offsets), " end past the data (",
                                      data_size_, " bytes): the file is truncated or corrupt"));
    }
    if (*end - *begin != expected_bytes) {
      return Error(name, absl::StrCat("holds ", *end - *begin, " bytes but shape ", Show(*shape),
                                      " of ", info.dtype_name, " needs ", expected_bytes));
    }
    info.data_begin = *begin;
    info.data_end = *end;
    return info;
  }

  absl::Status ParseMetadata(const json& entry, std::map<std::string, std::string>* out) const {
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": __metadata__ is not an object"));
    }
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ": __metadata__ \"", key, "\" is not a string"));
      }
      (*out)[key] = value.get<std::string>();
    }
    return absl::OkStatus();
  }

 private:
  const std::string& path_;
  int64_t data_size_;
};

// Tensors must not share bytes: a writer that aliased them (or a corrupt header) would make
// in-place edits of one tensor change another. Gaps are harmless and tolerated.
absl::Status CheckNoOverlap(const std::string& path,
                            const std::map<std::string, SafetensorsTensorInfo, std::less<>>& all) {
  std::vector<const SafetensorsTensorInfo*> by_offset;
  for (const auto& [name, info] : all) {
    if (info.data_end > info.data_begin) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->data_begin < b->data_begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->data_begin < by_offset[i - 1]->data_end) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", by_offset[i]->name, "\" overlaps tensor \"",
                       by_offset[i - 1]->name, "\" in the data section"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::string path, const uint8_t* map, size_t map_size,
                                 int64_t data_start)
    : path_(std::move(path)), map_(map), map_size_(map_size), data_start_(data_start) {}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(const_cast<uint8_t*>(map_), map_size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat("cannot open ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("cannot stat ", path));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || file_size < 8) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a safetensors file (", file_size,
                     " bytes, too short for the 8-byte header length)"));
  }
  void* map = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return absl::ErrnoToStatus(mmap_errno, absl::StrCat("cannot mmap ", path));
  const auto* bytes = static_cast<const uint8_t*>(map);

  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  // From here on the object owns the mapping, so every early return unmaps it.
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, bytes, file_size, 0));
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header length ", header_size,
                                                   " does not fit the file (", file_size,
                                                   " bytes): truncated or not a safetensors file"));
  }
  file->data_start_ = static_cast<int64_t>(8 + header_size);
  const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header = json::parse(header_begin, header_begin + header_size, /*cb=*/nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the header is not a JSON object (truncated or corrupt file)"));
  }
  HeaderParser parser(path, static_cast<int64_t>(file_size - 8 - header_size));
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      RETURN_IF_ERROR(parser.ParseMetadata(entry, &file->metadata_));
      continue;
    }
    ASSIGN_OR_RETURN(SafetensorsTensorInfo info, parser.ParseTensor(name, entry));
    file->tensors_.emplace(name, std::move(info));
  }
  RETURN_IF_ERROR(CheckNoOverlap(path, file->tensors_));
  return file;
}

const SafetensorsTensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::span<const uint8_t> SafetensorsFile::Bytes(const SafetensorsTensorInfo& info) const {
  return {map_ + data_start_ + info.data_begin,
          static_cast<size_t>(info.data_end - info.data_begin)};
}

std::string_view SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

std::vector<uint8_t> EncodeFloats(std::span<const float> values, DType dtype) {
  std::vector<uint8_t> out(values.size() * DTypeBytes(dtype));
  if (dtype == DType::kF32) {
    if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = dtype == DType::kF16 ? FloatToF16(values[i]) : FloatToBf16(values[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

std::vector<float> DecodeFloats(std::span<const uint8_t> bytes, DType dtype) {
  const size_t n = bytes.size() / DTypeBytes(dtype);
  std::vector<float> out(n);
  if (dtype == DType::kF32) {
    if (n > 0) std::memcpy(out.data(), bytes.data(), n * 4);
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);  // the mapping need not be 2-byte aligned here
    out[i] = dtype == DType::kF16 ? F16ToFloat(h) : Bf16ToFloat(h);
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<const SafetensorsTensor*> order;
  for (const SafetensorsTensor& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": invalid tensor name \"", t.name, "\""));
    }
    int64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || __builtin_mul_overflow(elements, d, &elements)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor \"", t.name, "\": invalid shape"));
      }
    }
    if (static_cast<int64_t>(t.data.size()) != elements * DTypeBytes(t.dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", t.name, "\": ", t.data.size(), " bytes for ", elements,
                       " ", std::string(SafetensorsDTypeName(t.dtype)), " elements"));
    }
    order.push_back(&t);
  }
  // Largest elements first keeps every tensor aligned to its element size, as the reference does.
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    if (DTypeBytes(a->dtype) != DTypeBytes(b->dtype)) {
      return DTypeBytes(a->dtype) > DTypeBytes(b->dtype);
    }
    return a->name < b->name;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i]->name == order[i - 1]->name) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", order[i]->name, "\" given twice"));
    }
  }

  // The header lists names sorted; '_' sorts before lower case, so __metadata__ comes first, as
  // in the reference. Keys inside an entry keep the reference's order: dtype, shape, data_offsets.
  std::map<std::string, nlohmann::ordered_json> entries;
  int64_t offset = 0;
  for (const SafetensorsTensor* t : order) {
    const int64_t end = offset + static_cast<int64_t>(t->data.size());
    nlohmann::ordered_json& entry = entries[t->name];
    entry["dtype"] = SafetensorsDTypeName(t->dtype);
    entry["shape"] = t->shape;
    entry["data_offsets"] = {offset, end};
    offset = end;
  }
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (auto& [name, entry] : entries) header[name] = std::move(entry);
  std::string header_text = header.dump(-1, ' ', false, json::error_handler_t::replace);
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  const std::string tmp_path = path + ".tmp";
  {
    std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp_path));
    uint8_t length[8];
    uint64_t n = header_text.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const SafetensorsTensor* t : order) {
      out.write(reinterpret_cast<const char*>(t->data.data()),
                static_cast<std::streamsize>(t->data.size()));
    }
    out.close();
    if (!out) {
      std::remove(tmp_path.c_str());
      return absl::DataLossError(absl::StrCat("failed writing ", tmp_path));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp_path, path, ec);
  if (ec) {
    std::remove(tmp_path.c_str());
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp_path, " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace mlkv
