// KServe v2 tensor data: the elements of a request's input tensors, whether they travel in
// raw_input_contents (the binary form tritonclient uses) or in typed `contents`, and output
// tensors written in either form.
#ifndef MLKV_SERVER_KSERVE_TENSOR_DATA_H_
#define MLKV_SERVER_KSERVE_TENSOR_DATA_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "inference/grpc_service.pb.h"

namespace mlkv::server::kserve {

// One input tensor of a request and its data. A view: the request must outlive it.
//
// Raw layout (one raw_input_contents entry per tensor, elements back to back, little-endian):
//   BOOL 1 byte | INT8/UINT8 1 | INT16/UINT16 2 | INT32/UINT32/FP32 4 | INT64/UINT64/FP64 8
//   BYTES: per element  [u32 length][length bytes]
class InputTensor {
 public:
  using Proto = inference::ModelInferRequest::InferInputTensor;

  const std::string& name() const { return tensor_->name(); }
  const std::string& datatype() const { return tensor_->datatype(); }
  absl::Span<const int64_t> shape() const { return tensor_->shape(); }
  const google::protobuf::Map<std::string, inference::InferParameter>& parameters() const {
    return tensor_->parameters();
  }
  // The product of the shape (1 for shape []).
  int64_t num_elements() const { return num_elements_; }

  // The elements of a tensor of the accessor's datatypes, exactly num_elements() of them.
  // InvalidArgument naming the tensor when its datatype is another, or its data holds another
  // number of elements (or, raw, a different number of bytes).
  absl::StatusOr<std::vector<std::string>> Bytes() const;  // BYTES
  absl::StatusOr<std::vector<bool>> Bools() const;         // BOOL
  // Every integer datatype, INT8 to UINT64: int128 holds them all without a sign question.
  absl::StatusOr<std::vector<absl::int128>> Integers() const;
  absl::StatusOr<std::vector<double>> Floats() const;  // FP32, FP64

 private:
  friend absl::StatusOr<std::vector<InputTensor>> ReadInputs(
      const inference::ModelInferRequest& request);
  // `raw`: the tensor's raw_input_contents entry; null when its data is in tensor->contents().
  InputTensor(const Proto* tensor, const std::string* raw, int64_t num_elements)
      : tensor_(tensor), raw_(raw), num_elements_(num_elements) {}

  // InvalidArgument unless the datatype is one of `accepted`.
  absl::Status ExpectDatatype(std::initializer_list<absl::string_view> accepted) const;
  // InvalidArgument unless `count` typed-content elements match the shape.
  absl::Status ExpectCount(int64_t count) const;
  // The raw bytes, checked to hold num_elements() elements of `element_size` bytes.
  absl::StatusOr<absl::string_view> FixedSizeRaw(size_t element_size) const;

  const Proto* tensor_;
  const std::string* raw_;
  int64_t num_elements_;
};

// The request's input tensors, in order. InvalidArgument for: a tensor without a name or with a
// name given twice, a negative dimension, a shape of more elements than a request can hold, and
// raw_input_contents that is neither empty nor one entry per input, or that comes with any
// input's typed contents.
absl::StatusOr<std::vector<InputTensor>> ReadInputs(const inference::ModelInferRequest& request);

// How a response carries its output data: as the request carried its inputs.
enum class Encoding { kRaw, kContents };

// Appends a BYTES output of shape [1] holding `value`.
void AddBytesOutput(absl::string_view name, absl::string_view value, Encoding encoding,
                    inference::ModelInferResponse* response);
// Appends an INT32 output of shape [values.size()].
void AddInt32Output(absl::string_view name, absl::Span<const int32_t> values, Encoding encoding,
                    inference::ModelInferResponse* response);

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_TENSOR_DATA_H_
