// Tests of the safetensors reader and writer: round trips in every dtype, and one test per class
// of bad file, each of which must be a clear error (file path, tensor name), never a crash.
#include "model/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  // A file with an explicit header length, header text and data bytes.
  void WriteRaw(uint64_t header_length, const std::string& header, size_t data_bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(header_length >> (8 * i)));
    out << header << std::string(data_bytes, '\0');
  }
  void WriteHeader(const std::string& header, size_t data_bytes) {
    WriteRaw(header.size(), header, data_bytes);
  }
  // Opening must fail with the path and every given fragment in the message.
  void ExpectOpenError(const std::vector<std::string>& fragments) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
    ASSERT_FALSE(file.ok());
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(path_));
    for (const std::string& fragment : fragments) {
      EXPECT_THAT(std::string(file.status().message()), HasSubstr(fragment));
    }
  }

  ::mlkv::testing::ScopedTempDir temp_{"st"};
  const std::string dir_ = temp_.path();
  const std::string path_ = dir_ + "/model.safetensors";
};

SafetensorsTensor MakeTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                             const std::vector<float>& values) {
  return {std::move(name), dtype, std::move(shape), EncodeFloats(values, dtype)};
}

class RoundTripTest : public SafetensorsTest, public ::testing::WithParamInterface<DType> {};

TEST_P(RoundTripTest, WriterOutputReadsBack) {
  const DType dtype = GetParam();
  // Exactly representable in all three dtypes.
  const std::vector<float> a = {0.5f, -1.25f, 3.0f, 1024.0f, 0.0078125f, -0.0f};
  const std::vector<float> b = {7.0f, -2.0f};
  ASSERT_TRUE(WriteSafetensors(
                  path_,
                  {MakeTensor("zeta", dtype, {2, 3}, a), MakeTensor("alpha", DType::kF32, {2}, b),
                   MakeTensor("empty", dtype, {0, 4}, {})},
                  {{"format", "pt"}})
                  .ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  ASSERT_EQ((*file)->tensors().size(), 3u);
  const SafetensorsTensorInfo* zeta = (*file)->Find("zeta");
  ASSERT_NE(zeta, nullptr);
  EXPECT_EQ(zeta->dtype, dtype);
  EXPECT_THAT(zeta->shape, ElementsAre(2, 3));
  EXPECT_EQ(zeta->num_elements, 6);
  EXPECT_EQ(DecodeFloats((*file)->Bytes(*zeta), dtype), a);
  EXPECT_EQ(DecodeFloats((*file)->Bytes(*(*file)->Find("alpha")), DType::kF32), b);
  EXPECT_EQ((*file)->Find("empty")->num_elements, 0);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
  // Every tensor starts at a multiple of its element size.
  for (const auto& [name, info] : (*file)->tensors()) {
    EXPECT_EQ(info.data_begin % (info.dtype_name == "F32" ? 4 : 2), 0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, RoundTripTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16));

TEST_F(SafetensorsTest, HeaderIsPaddedWithSpacesToEightBytes) {
  ASSERT_TRUE(WriteSafetensors(path_, {MakeTensor("x", DType::kF16, {1}, {1.0f})}).ok());
  std::ifstream in(path_, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 2);
  const std::string header = bytes.substr(8, n);
  const std::string json = R"({"x":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})";
  EXPECT_EQ(header.substr(0, json.size()), json);
  EXPECT_EQ(header.substr(json.size()), std::string(n - json.size(), ' '));
}

TEST_F(SafetensorsTest, EncodeRoundsToNearest) {
  const std::vector<float> values = {0.1f};
  EXPECT_NEAR(DecodeFloats(EncodeFloats(values, DType::kF16), DType::kF16)[0], 0.1f, 1e-4);
  EXPECT_NEAR(DecodeFloats(EncodeFloats(values, DType::kBF16), DType::kBF16)[0], 0.1f, 1e-3);
}

TEST_F(SafetensorsTest, WriterRejectsSizeMismatchAndDuplicates) {
  SafetensorsTensor bad = MakeTensor("x", DType::kF32, {3}, {1.0f, 2.0f});
  EXPECT_THAT(std::string(WriteSafetensors(path_, {bad}).message()), HasSubstr("\"x\""));
  SafetensorsTensor x = MakeTensor("x", DType::kF32, {1}, {1.0f});
  EXPECT_THAT(std::string(WriteSafetensors(path_, {x, x}).message()), HasSubstr("twice"));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(SafetensorsTest, MissingFile) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path_));
}

TEST_F(SafetensorsTest, FileShorterThanLengthField) {
  std::ofstream(path_) << "abc";
  ExpectOpenError({"too short"});
}

TEST_F(SafetensorsTest, TruncatedFileNamesTheTensor) {
  ASSERT_TRUE(WriteSafetensors(path_, {MakeTensor("a", DType::kF32, {4}, {1, 2, 3, 4}),
                                       MakeTensor("b", DType::kF32, {4}, {5, 6, 7, 8})})
                  .ok());
  const auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size - 3);
  ExpectOpenError({"tensor \"b\"", "truncated"});
}

TEST_F(SafetensorsTest, EveryTruncationIsAnError) {
  ASSERT_TRUE(WriteSafetensors(path_,
                               {MakeTensor("a", DType::kBF16, {3}, {1, 2, 3}),
                                MakeTensor("b", DType::kF32, {2}, {5, 6})},
                               {{"format", "pt"}})
                  .ok());
  std::ifstream in(path_, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t length = 0; length < whole.size(); ++length) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << whole.substr(0, length);
    EXPECT_FALSE(SafetensorsFile::Open(path_).ok()) << "truncated to " << length;
  }
}

TEST_F(SafetensorsTest, CorruptedHeaderBytesNeverCrash) {
  ASSERT_TRUE(WriteSafetensors(path_, {MakeTensor("a", DType::kF16, {2, 2}, {1, 2, 3, 4})}).ok());
  std::ifstream in(path_, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t pos = 0; pos < whole.size(); ++pos) {
    for (char replacement : {'\0', '9', '-', '"', '\xff'}) {
      std::string corrupt = whole;
      corrupt[pos] = replacement;
      std::ofstream(path_, std::ios::binary | std::ios::trunc) << corrupt;
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
      if (!file.ok()) continue;
      for (const auto& [name, info] : (*file)->tensors()) {
        // Whatever the header now says, it was checked against the file: reading is in bounds.
        EXPECT_LE(static_cast<uint64_t>(info.data_end), whole.size());
        (void)(*file)->Bytes(info);
      }
    }
  }
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  WriteRaw(1000, "{}", 4);
  ExpectOpenError({"header length 1000"});
}

TEST_F(SafetensorsTest, AbsurdHeaderLength) {
  WriteRaw(uint64_t{1} << 63, "{}", 4);
  ExpectOpenError({"header length"});
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  WriteHeader("{\"a\": not json", 0);
  ExpectOpenError({"not a JSON object"});
}

TEST_F(SafetensorsTest, HeaderJsonButNotObject) {
  WriteHeader("[1, 2, 3]", 0);
  ExpectOpenError({"not a JSON object"});
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              12);
  ExpectOpenError({"\"b\" overlaps tensor \"a\""});
}

TEST_F(SafetensorsTest, OffsetsPastEndOfData) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12);
  ExpectOpenError({"tensor \"a\"", "end past the data"});
}

TEST_F(SafetensorsTest, OffsetsBeginAfterEnd) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 12);
  ExpectOpenError({"tensor \"a\"", "begin > end"});
}

TEST_F(SafetensorsTest, OffsetsNotTwoIntegers) {
  for (const char* offsets : {"[0.5,8]", "[\"0\",8]", "[0]", "[0,8,9]", "8", "[-8,0]"}) {
    WriteHeader(std::string(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)") + offsets + "}}",
                8);
    SCOPED_TRACE(offsets);
    ExpectOpenError({"tensor \"a\"", "data_offsets"});
  }
}

TEST_F(SafetensorsTest, ByteSizeDisagreesWithShape) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "holds 8 bytes", "needs 12"});
}

TEST_F(SafetensorsTest, UnknownDType) {
  WriteHeader(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "unknown dtype \"Q7\""});
}

TEST_F(SafetensorsTest, KnownNonFloatDTypeIsListedButNotComputable) {
  WriteHeader(R"({"mask":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})", 4);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("mask")->dtype, std::nullopt);
}

TEST_F(SafetensorsTest, NegativeShapeDim) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "non-negative integer"});
}

TEST_F(SafetensorsTest, NonIntegerShapeDim) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "non-negative integer"});
}

TEST_F(SafetensorsTest, ShapeProductOverflows) {
  WriteHeader(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "overflows"});
  WriteHeader(R"({"a":{"dtype":"F32","shape":[2305843009213693952,2],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "overflows"});
}

TEST_F(SafetensorsTest, MissingFieldsAndBadMetadata) {
  WriteHeader(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "dtype"});
  WriteHeader(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8);
  ExpectOpenError({"tensor \"a\"", "shape"});
  WriteHeader(R"({"a":[1,2]})", 8);
  ExpectOpenError({"tensor \"a\"", "not an object"});
  WriteHeader(R"({"__metadata__":{"format":1}})", 0);
  ExpectOpenError({"__metadata__", "format"});
}

}  // namespace
}  // namespace mlkv
