// Tests of Checkpoint: single-file and sharded directories, broken indexes, shape checks and
// F16/BF16 conversion to float32.
#include "model/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "common/half.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class CheckpointTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void Write(const std::string& file, const std::vector<SafetensorsTensor>& tensors) {
    ASSERT_TRUE(WriteSafetensors(Path(file), tensors).ok());
  }
  void WriteText(const std::string& file, const std::string& text) {
    std::ofstream(Path(file)) << text;
  }
  // Two shards: "a" and "b" in shard 1, "c" in shard 2, and an index saying so.
  void WriteShards(const std::string& index_json) {
    Write("model-00001-of-00002.safetensors", {Tensor("a", {2}, {1, 2}), Tensor("b", {1}, {3})});
    Write("model-00002-of-00002.safetensors", {Tensor("c", {2, 1}, {4, 5})});
    WriteText(kSafetensorsIndexFileName, index_json);
  }
  static SafetensorsTensor Tensor(std::string name, std::vector<int64_t> shape,
                                  const std::vector<float>& values, DType dtype = DType::kF32) {
    return {std::move(name), dtype, std::move(shape), EncodeFloats(values, dtype)};
  }
  std::string OpenError() {
    absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
    EXPECT_FALSE(checkpoint.ok());
    return checkpoint.ok() ? "" : std::string(checkpoint.status().message());
  }

  ::mlkv::testing::ScopedTempDir temp_{"ckpt"};
  const std::string dir_ = temp_.path();
};

constexpr char kGoodIndex[] = R"({"metadata": {"total_size": 20}, "weight_map": {
    "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
    "c": "model-00002-of-00002.safetensors"}})";

TEST_F(CheckpointTest, SingleFile) {
  Write(kSafetensorsFileName, {Tensor("x", {2, 2}, {1, 2, 3, 4}), Tensor("y", {1}, {5})});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT((*checkpoint)->TensorNames(), ElementsAre("x", "y"));
  EXPECT_TRUE((*checkpoint)->Contains("x"));
  EXPECT_FALSE((*checkpoint)->Contains("z"));
  absl::StatusOr<SafetensorsTensorInfo> info = (*checkpoint)->Find("x");
  ASSERT_TRUE(info.ok());
  EXPECT_THAT(info->shape, ElementsAre(2, 2));
  absl::StatusOr<std::vector<float>> x = (*checkpoint)->ReadFloat("x", {2, 2});
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_THAT(*x, ElementsAre(1, 2, 3, 4));
}

TEST_F(CheckpointTest, ShardedIndex) {
  WriteShards(kGoodIndex);
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT((*checkpoint)->TensorNames(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(*(*checkpoint)->ReadFloat("a", {2}), ElementsAre(1, 2));
  EXPECT_THAT(*(*checkpoint)->ReadFloat("c", {2, 1}), ElementsAre(4, 5));
}

TEST_F(CheckpointTest, EmptyDirectory) {
  EXPECT_THAT(OpenError(), HasSubstr("neither model.safetensors nor"));
}

TEST_F(CheckpointTest, MissingShardFile) {
  WriteShards(kGoodIndex);
  std::filesystem::remove(Path("model-00002-of-00002.safetensors"));
  const std::string error = OpenError();
  EXPECT_THAT(error, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(error, HasSubstr("\"c\""));
}

TEST_F(CheckpointTest, TensorListedButNotInShard) {
  WriteShards(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors",
      "d": "model-00002-of-00002.safetensors"}})");
  const std::string error = OpenError();
  EXPECT_THAT(error, HasSubstr("tensor \"d\" is listed in model-00002-of-00002.safetensors"));
}

TEST_F(CheckpointTest, ShardTensorMissingFromIndex) {
  WriteShards(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors"}})");
  EXPECT_THAT(OpenError(), HasSubstr("tensor \"b\" which the index does not map"));
}

TEST_F(CheckpointTest, ShardPathEscapingTheDirectory) {
  for (const char* shard : {"../model.safetensors", "/etc/passwd", "sub/../../x", ""}) {
    WriteShards(std::string(R"({"weight_map": {"a": ")") + shard + "\"}}");
    SCOPED_TRACE(shard);
    EXPECT_THAT(OpenError(), HasSubstr("not a path inside the model directory"));
  }
}

TEST_F(CheckpointTest, BadIndexJson) {
  WriteShards("{not json");
  EXPECT_THAT(OpenError(), HasSubstr("not a JSON object"));
  WriteShards(R"({"metadata": {}})");
  EXPECT_THAT(OpenError(), HasSubstr("weight_map"));
  WriteShards(R"({"weight_map": {"a": 3}})");
  EXPECT_THAT(OpenError(), HasSubstr("\"a\" is not a file name"));
}

TEST_F(CheckpointTest, MissingTensorNamesIt) {
  Write(kSafetensorsFileName, {Tensor("x", {1}, {1})});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok());
  absl::StatusOr<std::vector<float>> y = (*checkpoint)->ReadFloat("gpt_neox.embed_in.weight", {1});
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(y.status().message()), StartsWith("gpt_neox.embed_in.weight: "));
  EXPECT_FALSE((*checkpoint)->Find("y").ok());
}

TEST_F(CheckpointTest, MisshapenTensor) {
  const std::string name = "gpt_neox.layers.3.attention.query.weight";
  Write(kSafetensorsFileName, {Tensor(name, {64, 32}, std::vector<float>(64 * 32, 0.5f))});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok());
  absl::StatusOr<std::vector<float>> w = (*checkpoint)->ReadFloat(name, {64, 64});
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              StartsWith("gpt_neox.layers.3.attention.query.weight: shape [64,32], expected "
                         "[64,64]"));
}

TEST_F(CheckpointTest, ConvertsHalfPrecisionToFloat) {
  // Values with more mantissa than either 16-bit format holds must come back rounded to nearest.
  const std::vector<float> values = {1.5f, -2.25f, 65504.0f, 0.1f, 1e-6f, 3.14159265f};
  Write(kSafetensorsFileName,
        {Tensor("f16", {6}, values, DType::kF16), Tensor("bf16", {2, 3}, values, DType::kBF16)});
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ((*checkpoint)->Find("bf16")->dtype, DType::kBF16);
  absl::StatusOr<std::vector<float>> f16 = (*checkpoint)->ReadFloat("f16", {6});
  absl::StatusOr<std::vector<float>> bf16 = (*checkpoint)->ReadFloat("bf16", {2, 3});
  ASSERT_TRUE(f16.ok() && bf16.ok());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ((*f16)[i], F16ToFloat(FloatToF16(values[i]))) << i;
    EXPECT_EQ((*bf16)[i], Bf16ToFloat(FloatToBf16(values[i]))) << i;
  }
  EXPECT_EQ((*f16)[0], 1.5f);
  EXPECT_EQ((*bf16)[1], -2.25f);
  EXPECT_NEAR((*f16)[3], 0.1f, 1e-4);
  EXPECT_NEAR((*bf16)[5], 3.14159265f, 2e-2);
}

TEST_F(CheckpointTest, UnsupportedDTypeOnRead) {
  // An I64 tensor (hand-written: the writer only makes float tensors).
  const std::string header = R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  std::ofstream out(Path(kSafetensorsFileName), std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(header.size() >> (8 * i)));
  out << header << std::string(8, '\0');
  out.close();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  absl::StatusOr<std::vector<float>> ids = (*checkpoint)->ReadFloat("ids");
  ASSERT_FALSE(ids.ok());
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("ids: dtype I64 is not supported"));
}

}  // namespace
}  // namespace mlkv
