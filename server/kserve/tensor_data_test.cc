// KServe tensor data: every datatype read from raw_input_contents and from typed contents, each
// class of malformed tensor refused with the tensor's name, and outputs in both encodings.
#include "server/kserve/tensor_data.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::server::kserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Tensor = inference::ModelInferRequest::InferInputTensor;

// Little-endian bytes of `values`, written out by hand rather than by the code under test.
template <typename T>
std::string Raw(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out.append(reinterpret_cast<const char*>(bytes), sizeof(T));
  }
  return out;
}

// The binary BYTES encoding: a 4-byte little-endian length before each element.
std::string RawStrings(std::initializer_list<std::string> values) {
  std::string out;
  for (const std::string& v : values) {
    const uint32_t n = v.size();
    out +=
        std::string{char(n & 0xff), char((n >> 8) & 0xff), char((n >> 16) & 0xff), char(n >> 24)};
    out += v;
  }
  return out;
}

Tensor* AddInput(inference::ModelInferRequest* request, const std::string& name,
                 const std::string& datatype, std::initializer_list<int64_t> shape) {
  Tensor* t = request->add_inputs();
  t->set_name(name);
  t->set_datatype(datatype);
  for (int64_t d : shape) t->add_shape(d);
  return t;
}

// The single input of a one-input request with raw data.
struct OneRaw {
  OneRaw(const std::string& datatype, std::initializer_list<int64_t> shape, std::string raw) {
    AddInput(&request, "x", datatype, shape);
    request.add_raw_input_contents(std::move(raw));
  }
  InputTensor Get() {
    auto inputs = ReadInputs(request);
    EXPECT_TRUE(inputs.ok()) << inputs.status();
    return (*inputs)[0];
  }
  inference::ModelInferRequest request;
};

TEST(TensorDataTest, RawBytesElements) {
  const std::string binary("\xff\x00z", 3);
  OneRaw t("BYTES", {1, 3}, RawStrings({"ab", "", binary}));
  auto values = t.Get().Bytes();
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ElementsAre("ab", "", binary));
}

TEST(TensorDataTest, RawIntegersOfEveryWidth) {
  struct Case {
    std::string datatype;
    std::string raw;
    std::vector<absl::int128> expected;
  };
  const std::vector<Case> cases = {
      {"INT8", Raw<int8_t>({-3, 7}), {-3, 7}},
      {"UINT8", Raw<uint8_t>({250, 1}), {250, 1}},
      {"INT16", Raw<int16_t>({-30000, 2}), {-30000, 2}},
      {"UINT16", Raw<uint16_t>({65000, 3}), {65000, 3}},
      {"INT32", Raw<int32_t>({-5, 1 << 30}), {-5, 1 << 30}},
      {"UINT32", Raw<uint32_t>({4000000000u, 0}), {4000000000u, 0}},
      {"INT64", Raw<int64_t>({-(int64_t{1} << 40), 9}), {-(int64_t{1} << 40), 9}},
      {"UINT64", Raw<uint64_t>({~uint64_t{0}, 4}), {absl::int128(~uint64_t{0}), 4}},
  };
  for (const Case& c : cases) {
    OneRaw t(c.datatype, {2}, c.raw);
    auto values = t.Get().Integers();
    ASSERT_TRUE(values.ok()) << c.datatype << ": " << values.status();
    EXPECT_EQ(*values, c.expected) << c.datatype;
  }
}

TEST(TensorDataTest, RawFloatsAndBools) {
  OneRaw fp32("FP32", {2}, Raw<float>({0.5f, -2.0f}));
  EXPECT_THAT(*fp32.Get().Floats(), ElementsAre(0.5, -2.0));
  OneRaw fp64("FP64", {1}, Raw<double>({0.1}));
  EXPECT_THAT(*fp64.Get().Floats(), ElementsAre(0.1));
  OneRaw bools("BOOL", {3}, std::string("\x01\x00\x01", 3));
  EXPECT_THAT(*bools.Get().Bools(), ElementsAre(true, false, true));
}

TEST(TensorDataTest, TypedContentsOfEveryKind) {
  inference::ModelInferRequest request;
  AddInput(&request, "s", "BYTES", {2})->mutable_contents()->add_bytes_contents("a");
  request.mutable_inputs(0)->mutable_contents()->add_bytes_contents("bc");
  AddInput(&request, "i8", "INT8", {1})->mutable_contents()->add_int_contents(-4);
  AddInput(&request, "i64", "INT64", {1})->mutable_contents()->add_int64_contents(1LL << 40);
  AddInput(&request, "u32", "UINT32", {1})->mutable_contents()->add_uint_contents(7);
  AddInput(&request, "u64", "UINT64", {1})->mutable_contents()->add_uint64_contents(8);
  AddInput(&request, "f", "FP32", {1})->mutable_contents()->add_fp32_contents(0.25f);
  AddInput(&request, "d", "FP64", {1})->mutable_contents()->add_fp64_contents(0.125);
  AddInput(&request, "b", "BOOL", {1})->mutable_contents()->add_bool_contents(true);
  auto inputs = ReadInputs(request);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_THAT(*(*inputs)[0].Bytes(), ElementsAre("a", "bc"));
  EXPECT_THAT(*(*inputs)[1].Integers(), ElementsAre(-4));
  EXPECT_THAT(*(*inputs)[2].Integers(), ElementsAre(int64_t{1} << 40));
  EXPECT_THAT(*(*inputs)[3].Integers(), ElementsAre(7));
  EXPECT_THAT(*(*inputs)[4].Integers(), ElementsAre(8));
  EXPECT_THAT(*(*inputs)[5].Floats(), ElementsAre(0.25));
  EXPECT_THAT(*(*inputs)[6].Floats(), ElementsAre(0.125));
  EXPECT_THAT(*(*inputs)[7].Bools(), ElementsAre(true));
}

void ExpectInvalid(const absl::Status& status, const std::string& substring) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(substring));
}

TEST(TensorDataTest, MalformedRequestsAreRefused) {
  {
    SCOPED_TRACE("raw entries that do not match the inputs");
    inference::ModelInferRequest r;
    AddInput(&r, "a", "BOOL", {1});
    AddInput(&r, "b", "BOOL", {1});
    r.add_raw_input_contents("\x01");
    ExpectInvalid(ReadInputs(r).status(), "raw_input_contents: has 1 entries for 2 inputs");
  }
  {
    SCOPED_TRACE("raw and typed contents mixed");
    inference::ModelInferRequest r;
    AddInput(&r, "a", "BOOL", {1})->mutable_contents()->add_bool_contents(true);
    r.add_raw_input_contents("\x01");
    ExpectInvalid(ReadInputs(r).status(), "input 'a': has contents although");
  }
  {
    SCOPED_TRACE("no name");
    inference::ModelInferRequest r;
    AddInput(&r, "", "BOOL", {1});
    ExpectInvalid(ReadInputs(r).status(), "inputs[0]: has no name");
  }
  {
    SCOPED_TRACE("a name twice");
    inference::ModelInferRequest r;
    AddInput(&r, "a", "BOOL", {1});
    AddInput(&r, "a", "BOOL", {1});
    ExpectInvalid(ReadInputs(r).status(), "input 'a': is given twice");
  }
  {
    SCOPED_TRACE("negative dimension");
    inference::ModelInferRequest r;
    AddInput(&r, "a", "INT32", {1, -1});
    ExpectInvalid(ReadInputs(r).status(), "input 'a': shape [1,-1] has a negative size");
  }
  {
    SCOPED_TRACE("absurd shape");
    inference::ModelInferRequest r;
    AddInput(&r, "a", "INT32", {1 << 30, 1 << 30, 1 << 30});
    ExpectInvalid(ReadInputs(r).status(), "has too many elements");
  }
}

TEST(TensorDataTest, MalformedTensorDataIsRefusedWithTheTensorsName) {
  ExpectInvalid(OneRaw("INT32", {1}, Raw<int32_t>({1})).Get().Bytes().status(),
                "input 'x': datatype is \"INT32\", expected BYTES");
  ExpectInvalid(OneRaw("FP16", {1}, "ab").Get().Floats().status(),
                "datatype is \"FP16\", expected FP32 or FP64");
  ExpectInvalid(OneRaw("BYTES", {1}, "a").Get().Integers().status(), "expected INT8 or INT16");
  ExpectInvalid(OneRaw("BOOL", {1}, "").Get().Floats().status(), "expected FP32 or FP64");
  // Raw byte counts that the shape does not explain.
  ExpectInvalid(OneRaw("INT32", {2}, Raw<int32_t>({1})).Get().Integers().status(),
                "input 'x': raw_input_contents holds 4 bytes, the shape [2] of INT32 needs 8");
  ExpectInvalid(OneRaw("BOOL", {1}, "").Get().Bools().status(), "holds 0 bytes");
  ExpectInvalid(OneRaw("FP64", {1}, Raw<float>({1.0f})).Get().Floats().status(), "holds 4 bytes");
  // BYTES framing.
  ExpectInvalid(OneRaw("BYTES", {1}, "ab").Get().Bytes().status(),
                "ends inside the length of element 0");
  ExpectInvalid(OneRaw("BYTES", {1}, RawStrings({"abc"}).substr(0, 5)).Get().Bytes().status(),
                "element 0 claims 3 bytes, only 1 follow");
  ExpectInvalid(OneRaw("BYTES", {1}, RawStrings({"a", "b"})).Get().Bytes().status(),
                "has 5 bytes after the 1 elements");
  ExpectInvalid(OneRaw("BYTES", {2}, RawStrings({"a"})).Get().Bytes().status(),
                "ends inside the length of element 1");
}

TEST(TensorDataTest, TypedContentsThatDoNotMatchAreRefused) {
  inference::ModelInferRequest r;
  AddInput(&r, "count", "INT32", {2})->mutable_contents()->add_int_contents(1);
  AddInput(&r, "field", "INT64", {1})->mutable_contents()->add_int_contents(1);
  AddInput(&r, "both", "INT32", {1})->mutable_contents()->add_int_contents(1);
  r.mutable_inputs(2)->mutable_contents()->add_uint_contents(1);
  AddInput(&r, "strings", "BYTES", {1});
  auto inputs = ReadInputs(r);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  ExpectInvalid((*inputs)[0].Integers().status(),
                "input 'count': contents hold 1 elements, the shape [2] says 2");
  ExpectInvalid((*inputs)[1].Integers().status(),
                "input 'field': contents of datatype INT64 belong in int64_contents");
  ExpectInvalid((*inputs)[2].Integers().status(), "belong in int_contents");
  ExpectInvalid((*inputs)[3].Bytes().status(), "contents hold 0 elements");
}

TEST(TensorDataTest, OutputsInBothEncodings) {
  inference::ModelInferResponse raw;
  AddBytesOutput("text", "hi", Encoding::kRaw, &raw);
  AddInt32Output("ids", std::vector<int32_t>{1, -2}, Encoding::kRaw, &raw);
  ASSERT_EQ(raw.outputs_size(), 2);
  EXPECT_EQ(raw.outputs(0).datatype(), "BYTES");
  EXPECT_THAT(raw.outputs(0).shape(), ElementsAre(1));
  EXPECT_EQ(raw.outputs(1).datatype(), "INT32");
  EXPECT_THAT(raw.outputs(1).shape(), ElementsAre(2));
  ASSERT_EQ(raw.raw_output_contents_size(), 2);
  EXPECT_EQ(raw.raw_output_contents(0), RawStrings({"hi"}));
  EXPECT_EQ(raw.raw_output_contents(1), Raw<int32_t>({1, -2}));
  EXPECT_FALSE(raw.outputs(0).has_contents());

  inference::ModelInferResponse typed;
  AddBytesOutput("text", "hi", Encoding::kContents, &typed);
  AddInt32Output("ids", std::vector<int32_t>{}, Encoding::kContents, &typed);
  EXPECT_EQ(typed.raw_output_contents_size(), 0);
  EXPECT_THAT(typed.outputs(0).contents().bytes_contents(), ElementsAre("hi"));
  EXPECT_THAT(typed.outputs(1).shape(), ElementsAre(0));
  EXPECT_EQ(typed.outputs(1).contents().int_contents_size(), 0);
}

}  // namespace
}  // namespace mlkv::server::kserve
