// Decoding and encoding KServe v2 tensor data; see tensor_data.h.
#include "server/kserve/tensor_data.h"

#include <bit>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace mlkv::server::kserve {
namespace {

// Far beyond any message gRPC accepts, and small enough that size arithmetic cannot overflow.
constexpr int64_t kMaxElements = int64_t{1} << 40;

absl::Status TensorError(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("input '", name, "': ", what));
}

// Raw contents are little-endian, as every machine this server builds for is: elements are
// copied as they are.
static_assert(std::endian::native == std::endian::little);

template <typename T>
T Load(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

template <typename T>
void Store(T value, std::string* out) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

size_t IntegerSize(absl::string_view datatype) {
  if (datatype == "INT8" || datatype == "UINT8") return 1;
  if (datatype == "INT16" || datatype == "UINT16") return 2;
  if (datatype == "INT32" || datatype == "UINT32") return 4;
  return 8;
}

absl::int128 LoadInteger(absl::string_view datatype, const char* p) {
  if (datatype == "INT8") return Load<int8_t>(p);
  if (datatype == "UINT8") return Load<uint8_t>(p);
  if (datatype == "INT16") return Load<int16_t>(p);
  if (datatype == "UINT16") return Load<uint16_t>(p);
  if (datatype == "INT32") return Load<int32_t>(p);
  if (datatype == "UINT32") return Load<uint32_t>(p);
  if (datatype == "INT64") return Load<int64_t>(p);
  return Load<uint64_t>(p);
}

}  // namespace

absl::Status InputTensor::ExpectDatatype(std::initializer_list<absl::string_view> accepted) const {
  for (absl::string_view type : accepted) {
    if (datatype() == type) return absl::OkStatus();
  }
  return TensorError(name(), absl::StrCat("datatype is \"", datatype(), "\", expected ",
                                          absl::StrJoin(accepted, " or ")));
}

absl::Status InputTensor::ExpectCount(int64_t count) const {
  if (count == num_elements_) return absl::OkStatus();
  return TensorError(name(), absl::StrCat("contents hold ", count, " elements, the shape [",
                                          absl::StrJoin(shape(), ","), "] says ", num_elements_));
}

absl::StatusOr<absl::string_view> InputTensor::FixedSizeRaw(size_t element_size) const {
  const size_t expected = static_cast<size_t>(num_elements_) * element_size;
  if (raw_->size() != expected) {
    return TensorError(name(), absl::StrCat("raw_input_contents holds ", raw_->size(),
                                            " bytes, the shape [", absl::StrJoin(shape(), ","),
                                            "] of ", datatype(), " needs ", expected));
  }
  return absl::string_view(*raw_);
}

absl::StatusOr<std::vector<std::string>> InputTensor::Bytes() const {
  RETURN_IF_ERROR(ExpectDatatype({"BYTES"}));
  std::vector<std::string> out;
  if (raw_ == nullptr) {
    const auto& contents = tensor_->contents().bytes_contents();
    RETURN_IF_ERROR(ExpectCount(contents.size()));
    out.assign(contents.begin(), contents.end());
    return out;
  }
  absl::string_view rest = *raw_;
  for (int64_t i = 0; i < num_elements_; ++i) {
    if (rest.size() < 4) {
      return TensorError(name(), absl::StrCat("raw_input_contents ends inside the length of "
                                              "element ",
                                              i, " of ", num_elements_));
    }
    const uint32_t length = Load<uint32_t>(rest.data());
    rest.remove_prefix(4);
    if (rest.size() < length) {
      return TensorError(name(), absl::StrCat("raw_input_contents element ", i, " claims ", length,
                                              " bytes, only ", rest.size(), " follow"));
    }
    out.emplace_back(rest.substr(0, length));
    rest.remove_prefix(length);
  }
  if (!rest.empty()) {
    return TensorError(name(),
                       absl::StrCat("raw_input_contents has ", rest.size(), " bytes after the ",
                                    num_elements_, " elements of the shape"));
  }
  return out;
}

absl::StatusOr<std::vector<bool>> InputTensor::Bools() const {
  RETURN_IF_ERROR(ExpectDatatype({"BOOL"}));
  if (raw_ == nullptr) {
    const auto& contents = tensor_->contents().bool_contents();
    RETURN_IF_ERROR(ExpectCount(contents.size()));
    return std::vector<bool>(contents.begin(), contents.end());
  }
  ASSIGN_OR_RETURN(const absl::string_view raw, FixedSizeRaw(1));
  std::vector<bool> out;
  for (char byte : raw) out.push_back(byte != 0);
  return out;
}

absl::StatusOr<std::vector<absl::int128>> InputTensor::Integers() const {
  RETURN_IF_ERROR(
      ExpectDatatype({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}));
  std::vector<absl::int128> out;
  const size_t size = IntegerSize(datatype());
  if (raw_ == nullptr) {
    // Each datatype has one contents field: INT8-INT32 share int_contents, UINT8-UINT32
    // uint_contents; INT64 and UINT64 have their own.
    const inference::InferTensorContents& c = tensor_->contents();
    const bool is_signed = datatype()[0] == 'I';
    const auto copy = [&](absl::string_view field, const auto& values) -> absl::Status {
      const int total = c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
                        c.uint64_contents_size();
      if (values.size() != total) {
        return TensorError(name(),
                           absl::StrCat("contents of datatype ", datatype(), " belong in ", field));
      }
      RETURN_IF_ERROR(ExpectCount(values.size()));
      out.assign(values.begin(), values.end());
      return absl::OkStatus();
    };
    absl::Status copied = is_signed ? (size < 8 ? copy("int_contents", c.int_contents())
                                                : copy("int64_contents", c.int64_contents()))
                                    : (size < 8 ? copy("uint_contents", c.uint_contents())
                                                : copy("uint64_contents", c.uint64_contents()));
    if (!copied.ok()) return copied;
    return out;
  }
  ASSIGN_OR_RETURN(const absl::string_view raw, FixedSizeRaw(size));
  for (size_t offset = 0; offset < raw.size(); offset += size) {
    out.push_back(LoadInteger(datatype(), raw.data() + offset));
  }
  return out;
}

absl::StatusOr<std::vector<double>> InputTensor::Floats() const {
  RETURN_IF_ERROR(ExpectDatatype({"FP32", "FP64"}));
  const bool fp32 = datatype() == "FP32";
  std::vector<double> out;
  if (raw_ == nullptr) {
    const inference::InferTensorContents& c = tensor_->contents();
    const int count = fp32 ? c.fp32_contents_size() : c.fp64_contents_size();
    RETURN_IF_ERROR(ExpectCount(count));
    if (fp32) {
      out.assign(c.fp32_contents().begin(), c.fp32_contents().end());
    } else {
      out.assign(c.fp64_contents().begin(), c.fp64_contents().end());
    }
    return out;
  }
  ASSIGN_OR_RETURN(const absl::string_view raw, FixedSizeRaw(fp32 ? 4 : 8));
  for (size_t offset = 0; offset < raw.size(); offset += fp32 ? 4 : 8) {
    const char* p = raw.data() + offset;
    out.push_back(fp32 ? double{Load<float>(p)} : Load<double>(p));
  }
  return out;
}

absl::StatusOr<std::vector<InputTensor>> ReadInputs(const inference::ModelInferRequest& request) {
  const int num_raw = request.raw_input_contents_size();
  if (num_raw != 0 && num_raw != request.inputs_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw_input_contents: has ", num_raw, " entries for ", request.inputs_size(),
                     " inputs; give one per input, in the order of `inputs`, or none"));
  }
  std::vector<InputTensor> inputs;
  absl::flat_hash_set<absl::string_view> names;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const InputTensor::Proto& tensor = request.inputs(i);
    if (tensor.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("inputs[", i, "]: has no name"));
    }
    if (!names.insert(tensor.name()).second) {
      return TensorError(tensor.name(), "is given twice");
    }
    if (num_raw != 0 && tensor.has_contents()) {
      return TensorError(tensor.name(),
                         "has contents although the request uses "
                         "raw_input_contents; use one or the other");
    }
    const std::string shape = absl::StrCat("shape [", absl::StrJoin(tensor.shape(), ","), "]");
    int64_t num_elements = 1;
    for (int64_t dim : tensor.shape()) {
      if (dim < 0) return TensorError(tensor.name(), absl::StrCat(shape, " has a negative size"));
      if (dim != 0 && num_elements > kMaxElements / dim) {
        return TensorError(tensor.name(), absl::StrCat(shape, " has too many elements"));
      }
      num_elements *= dim;
    }
    inputs.push_back(InputTensor(&tensor, num_raw != 0 ? &request.raw_input_contents(i) : nullptr,
                                 num_elements));
  }
  return inputs;
}

void AddBytesOutput(absl::string_view name, absl::string_view value, Encoding encoding,
                    inference::ModelInferResponse* response) {
  inference::ModelInferResponse::InferOutputTensor* tensor = response->add_outputs();
  tensor->set_name(std::string(name));
  tensor->set_datatype("BYTES");
  tensor->add_shape(1);
  if (encoding == Encoding::kContents) {
    tensor->mutable_contents()->add_bytes_contents(std::string(value));
    return;
  }
  std::string* raw = response->add_raw_output_contents();
  Store(static_cast<uint32_t>(value.size()), raw);
  raw->append(value.data(), value.size());
}

void AddInt32Output(absl::string_view name, absl::Span<const int32_t> values, Encoding encoding,
                    inference::ModelInferResponse* response) {
  inference::ModelInferResponse::InferOutputTensor* tensor = response->add_outputs();
  tensor->set_name(std::string(name));
  tensor->set_datatype("INT32");
  tensor->add_shape(static_cast<int64_t>(values.size()));
  if (encoding == Encoding::kContents) {
    tensor->mutable_contents()->mutable_int_contents()->Add(values.begin(), values.end());
    return;
  }
  std::string* raw = response->add_raw_output_contents();
  raw->reserve(values.size() * 4);
  for (int32_t v : values) Store(v, raw);
}

}  // namespace mlkv::server::kserve
