// KV capacity planning: block counts of the paper's variants in the ratio of their bytes per token,
// the fraction form (of what the weights and the activation workspace leave), every class of bad
// budget refused naming its flag, the start-up memory line, the weights-fit check, host memory.
#include "planning/kv_capacity.h"

#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planning/host_memory.h"

namespace mlkv {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

ModelConfig LoadConfig(const std::string& name) {
  auto config = ModelConfig::FromFile(std::string(MLKV_CONFIGS_DIR) + "/" + name + ".json");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : ModelConfig();
}

KvBudget Bytes(int64_t bytes) {
  KvBudget budget;
  budget.kv_cache_bytes = bytes;
  return budget;
}

KvBudget Fraction(double fraction, int64_t memory_limit_bytes, int64_t weight_bytes,
                  int64_t workspace_bytes = 0) {
  KvBudget budget;
  budget.kv_cache_fraction = fraction;
  budget.memory_limit_bytes = memory_limit_bytes;
  budget.weight_bytes = weight_bytes;
  budget.workspace_bytes = workspace_bytes;
  return budget;
}

// Expects an InvalidArgument error whose message contains every one of `parts`.
template <typename... Parts>
void ExpectError(const absl::StatusOr<KvCapacity>& plan, const Parts&... parts) {
  ASSERT_FALSE(plan.ok()) << "expected an error, got " << plan->num_blocks << " blocks";
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << plan.status();
  EXPECT_THAT(std::string(plan.status().message()), AllOf(HasSubstr(parts)...));
}

struct Variant {
  std::string config;
  int64_t fp16_bytes_per_token;  // design/model.md's table
};

// The Pythia-160M-shaped variants of design/model.md: MHA-144 (12 layers x 12 KV heads) down to
// MLKV-1 (one KV layer with one KV head).
const std::vector<Variant>& Variants() {
  static const auto* variants = new std::vector<Variant>{
      {"pythia-160m-mha-144", 36864}, {"pythia-160m-gqa-48", 12288}, {"pythia-160m-mqa-12", 3072},
      {"pythia-160m-mlkv-6", 1536},   {"pythia-160m-mlkv-2", 512},   {"pythia-160m-mlkv-1", 256},
  };
  return *variants;
}

TEST(KvCapacityTest, BlockCountsStandInTheRatioOfBytesPerToken) {
  constexpr int64_t kBlockSize = 16;
  // A multiple of every variant's block bytes, so each count is exact: MHA gets 1000 blocks.
  constexpr int64_t kBudget = 36864 * kBlockSize * 1000;
  const int64_t mha_blocks = 1000;
  for (const Variant& v : Variants()) {
    SCOPED_TRACE(v.config);
    const ModelConfig config = LoadConfig(v.config);
    auto plan = PlanKvCapacity(config, DType::kF16, kBlockSize, 2048, Bytes(kBudget));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->kv_bytes_per_token, v.fp16_bytes_per_token);
    EXPECT_EQ(plan->block_bytes, kBlockSize * v.fp16_bytes_per_token);
    // blocks x bytes per token is the same for every variant: the counts are in inverse ratio
    // of the bytes per token (MLKV-1 holds 144x the blocks of MHA).
    EXPECT_EQ(plan->num_blocks * v.fp16_bytes_per_token, mha_blocks * 36864);
    EXPECT_EQ(plan->num_blocks, mha_blocks * (36864 / v.fp16_bytes_per_token));
    EXPECT_EQ(plan->num_tokens, plan->num_blocks * kBlockSize);
    EXPECT_EQ(plan->blocks_per_sequence, 128);
    EXPECT_EQ(plan->max_concurrent_sequences, plan->num_blocks / 128);
    EXPECT_EQ(plan->budget_bytes, kBudget);
  }
}

TEST(KvCapacityTest, BlocksHoldEveryGroupSoTheyScaleWithKvLayersNotLayers) {
  // MLKV-6: 12 layers but 6 KV layers of one head: 2 x 6 x 1 x 64 x 4 bytes per token in f32.
  const ModelConfig config = LoadConfig("pythia-160m-mlkv-6");
  ASSERT_EQ(config.num_hidden_layers, 12);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    auto plan = PlanKvCapacity(config, dtype, 32, 2048, Bytes(int64_t{1} << 30));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->kv_bytes_per_token, 2 * 6 * 1 * 64 * DTypeBytes(dtype));
    EXPECT_EQ(plan->block_bytes, 32 * config.kv_bytes_per_token(DTypeBytes(dtype)));
  }
}

TEST(KvCapacityTest, BudgetThatIsNotAMultipleFloors) {
  constexpr int64_t kBlockSize = 16;
  constexpr int64_t kBudget = 36864 * kBlockSize * 1000 + 36864 * kBlockSize - 1;
  for (const Variant& v : Variants()) {
    SCOPED_TRACE(v.config);
    auto plan = PlanKvCapacity(LoadConfig(v.config), DType::kF16, kBlockSize, 2048, Bytes(kBudget));
    ASSERT_TRUE(plan.ok()) << plan.status();
    const int64_t block_bytes = kBlockSize * v.fp16_bytes_per_token;
    EXPECT_EQ(plan->num_blocks, kBudget / block_bytes);
    EXPECT_LE(plan->num_blocks * block_bytes, kBudget);
    EXPECT_GT((plan->num_blocks + 1) * block_bytes, kBudget);
  }
  // Worked by hand: MHA still 1000 blocks; MLKV-1 (4096-byte blocks) 144000 + 589823 / 4096.
  auto mha = PlanKvCapacity(LoadConfig("pythia-160m-mha-144"), DType::kF16, kBlockSize, 2048,
                            Bytes(kBudget));
  auto mlkv1 = PlanKvCapacity(LoadConfig("pythia-160m-mlkv-1"), DType::kF16, kBlockSize, 2048,
                              Bytes(kBudget));
  ASSERT_TRUE(mha.ok() && mlkv1.ok());
  EXPECT_EQ(mha->num_blocks, 1000);
  EXPECT_EQ(mlkv1->num_blocks, 144143);
}

TEST(KvCapacityTest, SequencesRoundUpToWholeBlocks) {
  const ModelConfig config = LoadConfig("pythia-160m-mlkv-2");  // 512 bytes per token in f16
  const int64_t block_bytes = 16 * 512;
  // 100 blocks; 2047 and 2048 tokens take 128 blocks, 2033 takes 128, 2032 takes 127.
  auto plan = PlanKvCapacity(config, DType::kF16, 16, 2033, Bytes(1000 * block_bytes));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->blocks_per_sequence, 128);
  EXPECT_EQ(plan->max_concurrent_sequences, 1000 / 128);
  plan = PlanKvCapacity(config, DType::kF16, 16, 2032, Bytes(1000 * block_bytes));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->blocks_per_sequence, 127);
  EXPECT_EQ(plan->max_concurrent_sequences, 1000 / 127);
  plan = PlanKvCapacity(config, DType::kF16, 16, 1, Bytes(1000 * block_bytes));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->blocks_per_sequence, 1);
  EXPECT_EQ(plan->max_concurrent_sequences, 1000);
}

TEST(KvCapacityTest, FractionIsOfTheMemoryLeftAfterWeights) {
  const ModelConfig config = LoadConfig("pythia-160m-mqa-12");  // 3072 bytes per token in f16
  constexpr int64_t kGiB = int64_t{1} << 30;
  auto plan = PlanKvCapacity(config, DType::kF16, 16, 2048, Fraction(0.5, 10 * kGiB, 2 * kGiB));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 4 * kGiB);
  EXPECT_EQ(plan->num_blocks, 4 * kGiB / (16 * 3072));

  plan = PlanKvCapacity(config, DType::kF16, 16, 2048, Fraction(1.0, 10 * kGiB, 2 * kGiB));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 8 * kGiB);

  // floor(0.9 x 1,000,000,007) = 900,000,006: the share floors to whole bytes.
  plan = PlanKvCapacity(config, DType::kF16, 16, 2048, Fraction(0.9, 1'000'000'007 + 5, 5));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 900'000'006);

  // The whole 64-bit range: the share never exceeds what is there.
  plan = PlanKvCapacity(config, DType::kF16, 16, 2048, Fraction(1.0, kInt64Max, 0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, kInt64Max);
  plan = PlanKvCapacity(config, DType::kF16, 16, 2048,
                        Fraction(std::nextafter(1.0, 0.0), kInt64Max, 0));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_LE(plan->budget_bytes, kInt64Max);
  EXPECT_GT(plan->budget_bytes, kInt64Max / 2);
}

TEST(KvCapacityTest, FractionIsOfTheMemoryLeftAfterWeightsAndWorkspace) {
  const ModelConfig config = LoadConfig("pythia-160m-mqa-12");  // 3072 bytes per token in f16
  constexpr int64_t kGiB = int64_t{1} << 30;
  // 0.5 x (10 - 2 - 1) GiB.
  auto plan =
      PlanKvCapacity(config, DType::kF16, 16, 2048, Fraction(0.5, 10 * kGiB, 2 * kGiB, kGiB));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 7 * kGiB / 2);
  EXPECT_EQ(plan->num_blocks, 7 * kGiB / 2 / (16 * 3072));
  // floor(0.3 x (1,000,000 - 1,000 - 999)) = floor(0.3 x 998,001) = 299,400.
  plan = PlanKvCapacity(config, DType::kF16, 16, 16, Fraction(0.3, 1'000'000, 1'000, 999));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 299'400);
  // The whole of what is left.
  plan = PlanKvCapacity(config, DType::kF16, 16, 16, Fraction(1.0, 1'000'000, 1'000, 999));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 998'001);
}

TEST(KvCapacityTest, ByteBudgetIgnoresMemoryLimitAndWeights) {
  KvBudget budget = Bytes(16 * 3072 * 10);
  budget.memory_limit_bytes = 1;  // would be far too small, but the byte form does not read it
  budget.weight_bytes = 1000;
  budget.workspace_bytes = 1000;
  auto plan = PlanKvCapacity(LoadConfig("pythia-160m-mqa-12"), DType::kF16, 16, 16, budget);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->num_blocks, 10);
}

// ---- bad input: one test per class, each error naming its flag ----------------------------------

class KvCapacityErrorTest : public ::testing::Test {
 protected:
  absl::StatusOr<KvCapacity> Plan(const KvBudget& budget, int64_t block_size = 16,
                                  int64_t max_model_len = 2048) {
    return PlanKvCapacity(config_, DType::kF16, block_size, max_model_len, budget);
  }
  const ModelConfig config_ = LoadConfig("pythia-160m-mlkv-6");  // 1536 bytes per token in f16
};

TEST_F(KvCapacityErrorTest, NoBudget) {
  ExpectError(Plan(KvBudget()), "--kv-cache-bytes or --kv-cache-fraction");
}

TEST_F(KvCapacityErrorTest, BothBudgets) {
  KvBudget budget = Fraction(0.5, 1 << 30, 0);
  budget.kv_cache_bytes = 1 << 20;
  ExpectError(Plan(budget), "--kv-cache-bytes or --kv-cache-fraction", "not both");
}

TEST_F(KvCapacityErrorTest, NonPositiveBytes) {
  ExpectError(Plan(Bytes(0)), "--kv-cache-bytes", "positive", "got 0");
  ExpectError(Plan(Bytes(-5)), "--kv-cache-bytes", "got -5");
}

TEST_F(KvCapacityErrorTest, FractionOutsideZeroToOne) {
  for (double fraction : {0.0, -0.25, 1.5, std::nan("")}) {
    SCOPED_TRACE(fraction);
    ExpectError(Plan(Fraction(fraction, 1 << 30, 0)), "--kv-cache-fraction", "(0, 1]");
  }
}

TEST_F(KvCapacityErrorTest, NonPositiveMemoryLimit) {
  ExpectError(Plan(Fraction(0.5, 0, 0)), "--memory-limit-bytes", "positive");
  ExpectError(Plan(Fraction(0.5, -1, 0)), "--memory-limit-bytes", "got -1");
}

TEST_F(KvCapacityErrorTest, WeightsExceedMemoryLimit) {
  ExpectError(Plan(Fraction(0.5, 1000, 1001)),
              "--kv-cache-fraction: the weights (1001 bytes) and the activation workspace "
              "(0 bytes) need more than the 1000 bytes of memory (--memory-limit-bytes), which "
              "leaves nothing for the KV cache");
}

TEST_F(KvCapacityErrorTest, WeightsAndWorkspaceTogetherExceedMemoryLimit) {
  // Each fits alone; together they are a byte over.
  constexpr int64_t kGiB = int64_t{1} << 30;
  KvBudget budget = Fraction(0.9, 8 * kGiB, 6 * kGiB, 2 * kGiB + 1);
  budget.memory_limit_source = "the free memory of CUDA device 0 (NVIDIA H200)";
  ExpectError(Plan(budget), "--kv-cache-fraction", "the weights (6442450944 bytes (6.0 GiB))",
              "the activation workspace (2147483649 bytes (2.0 GiB))",
              "more than the 8589934592 bytes (8.0 GiB) of memory (the free memory of CUDA "
              "device 0 (NVIDIA H200))");
  // A sum past 64 bits is refused the same way, not wrapped around.
  ExpectError(Plan(Fraction(0.5, kInt64Max, kInt64Max, 1)), "--kv-cache-fraction", "need more than",
              "--memory-limit-bytes");
}

TEST_F(KvCapacityErrorTest, NegativeWeightOrWorkspaceBytes) {
  ExpectError(Plan(Fraction(0.5, 1000, -1)), "must not be negative", "-1");
  ExpectError(Plan(Fraction(0.5, 1000, 0, -2)), "must not be negative", "-2");
}

TEST_F(KvCapacityErrorTest, NonPositiveBlockSize) {
  ExpectError(Plan(Bytes(1 << 30), 0), "--block-size", "positive", "got 0");
  ExpectError(Plan(Bytes(1 << 30), -16), "--block-size", "got -16");
}

TEST_F(KvCapacityErrorTest, BlockBytesOverflow) {
  ExpectError(Plan(Bytes(kInt64Max), kInt64Max / 2), "--block-size", "overflows");
}

TEST_F(KvCapacityErrorTest, NonPositiveMaxModelLen) {
  ExpectError(Plan(Bytes(1 << 30), 16, 0), "--max-model-len", "positive", "got 0");
  ExpectError(Plan(Bytes(1 << 30), 16, -1), "--max-model-len", "got -1");
}

TEST_F(KvCapacityErrorTest, MaxModelLenBeyondPositions) {
  ExpectError(Plan(Bytes(1 << 30), 16, 2049),
              "--max-model-len 2049 exceeds the model's max_position_embeddings 2048");
}

TEST_F(KvCapacityErrorTest, BudgetBelowOneBlock) {
  // One block is 16 x 1536 = 24576 bytes.
  ExpectError(Plan(Bytes(24575)), "--kv-cache-bytes", "24575", "below one block of 24576 bytes");
  // 0.1 of the 100,000 bytes the weights leave.
  ExpectError(Plan(Fraction(0.1, 1'000'000, 900'000)), "--kv-cache-fraction", "10000 bytes",
              "below one block");
  ExpectError(Plan(Fraction(1.0, 1000, 1000)), "--kv-cache-fraction", "below one block");
  // Weights and workspace leave exactly nothing.
  ExpectError(Plan(Fraction(1.0, 1000, 600, 400)), "--kv-cache-fraction",
              "the 0 bytes left after 600 bytes of weights and 400 bytes of activation workspace",
              "below one block");
  ASSERT_TRUE(Plan(Bytes(24576), 16, 16).ok());  // exactly one block holds one 16-token sequence
}

TEST_F(KvCapacityErrorTest, SequenceThatDoesNotFitNamesALengthThatDoes) {
  // 40 blocks (a byte short of 41), a 2048-token sequence needs 128.
  const int64_t block_bytes = 16 * 1536;
  for (const KvBudget& budget :
       {Bytes(41 * block_bytes - 1), Fraction(0.5, 82 * block_bytes - 1, 0)}) {
    auto plan = Plan(budget);
    ExpectError(plan, "one sequence of --max-model-len 2048 needs 128 blocks (3145728 bytes)",
                "holds 40 blocks", "--max-model-len 640 would fit",
                budget.kv_cache_bytes ? "raise --kv-cache-bytes" : "raise --kv-cache-fraction");
    std::smatch match;
    const std::string message(plan.status().message());
    ASSERT_TRUE(std::regex_search(message, match, std::regex("--max-model-len (\\d+) would fit")));
    const int64_t fitting = std::stoll(match[1]);
    auto fits = Plan(budget, 16, fitting);
    ASSERT_TRUE(fits.ok()) << fits.status();
    EXPECT_EQ(fits->max_concurrent_sequences, 1);
    EXPECT_FALSE(Plan(budget, 16, fitting + 1).ok()) << "the suggestion is not the largest";
  }
}

TEST(KvCapacityTest, DescriptionGivesBlocksTokensConcurrencyAndBytesPerToken) {
  auto plan = PlanKvCapacity(LoadConfig("pythia-160m-mlkv-2"), DType::kF16, 16, 2048,
                             Bytes(int64_t{1} << 30));
  ASSERT_TRUE(plan.ok()) << plan.status();
  // 2^30 / (16 x 512) = 131072 blocks, 2097152 tokens, 1024 sequences of 128 blocks.
  EXPECT_THAT(DescribeKvCapacity(*plan),
              AllOf(HasSubstr("131072 blocks of 16 tokens"), HasSubstr("2097152 tokens"),
                    HasSubstr("1024 sequences of --max-model-len 2048"), HasSubstr("1.0 GiB"),
                    HasSubstr("512 bytes per token")));
}

TEST(KvCapacityTest, MemoryUseGivesWeightsWorkspaceAndKvPool) {
  constexpr int64_t kGiB = int64_t{1} << 30, kMiB = int64_t{1} << 20;
  const ModelConfig config = LoadConfig("pythia-160m-mlkv-2");  // 512 bytes per token in f16
  KvBudget budget = Fraction(0.5, 10 * kGiB, 2 * kGiB, 512 * kMiB);
  budget.memory_limit_source = "the free memory of CUDA device 0 (NVIDIA H200)";
  auto plan = PlanKvCapacity(config, DType::kF16, 16, 2048, budget);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // 0.5 x 7.5 GiB = 3.75 GiB, a whole number of 8 KiB blocks.
  EXPECT_EQ(DescribeMemoryUse(budget, *plan),
            "memory: weights 2.0 GiB + activation workspace 512.0 MiB + KV cache 3.8 GiB = "
            "6.2 GiB of 10.0 GiB (the free memory of CUDA device 0 (NVIDIA H200); "
            "--kv-cache-fraction 0.5)");
  KvBudget bytes = Bytes(kGiB);
  bytes.weight_bytes = 2 * kGiB;
  bytes.workspace_bytes = 512 * kMiB;
  plan = PlanKvCapacity(config, DType::kF16, 16, 2048, bytes);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(DescribeMemoryUse(bytes, *plan),
            "memory: weights 2.0 GiB + activation workspace 512.0 MiB + KV cache 1.0 GiB = "
            "3.5 GiB");
  bytes.memory_limit_bytes = 4 * kGiB;
  bytes.memory_limit_source = "the host's memory";
  EXPECT_EQ(DescribeMemoryUse(bytes, *plan),
            "memory: weights 2.0 GiB + activation workspace 512.0 MiB + KV cache 1.0 GiB = "
            "3.5 GiB of 4.0 GiB (the host's memory)");
}

// A byte budget must fit beside the weights and workspace: exactly at the limit it does, one
// byte more of any of them and the message names the flag and all four figures.
TEST(KvCapacityTest, ByteBudgetMustFitBesideWeightsAndWorkspace) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  const ModelConfig config = LoadConfig("pythia-160m-mlkv-2");  // 8 KiB blocks in f16
  KvBudget budget = Bytes(64 * kMiB);
  budget.weight_bytes = 300 * kMiB;
  budget.workspace_bytes = 100 * kMiB;
  budget.memory_limit_bytes = 464 * kMiB;
  budget.memory_limit_source = "--memory-limit-bytes";
  auto plan = PlanKvCapacity(config, DType::kF16, 16, 2048, budget);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(CheckMemoryFits(budget, *plan).ok());
  budget.memory_limit_bytes -= 1;
  const absl::Status status = CheckMemoryFits(budget, *plan);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "--kv-cache-bytes: the KV cache (67108864 bytes (64.0 MiB)), the weights (314572800 "
            "bytes (300.0 MiB)) and the activation workspace (104857600 bytes (100.0 MiB)) need "
            "more than the 486539263 bytes (464.0 MiB) of memory (--memory-limit-bytes); lower "
            "--kv-cache-bytes or --max-num-batched-tokens, or use --kv-cache-fraction");
  // Without a limit (0) there is nothing to check against; the fraction form is not checked.
  budget.memory_limit_bytes = 0;
  EXPECT_TRUE(CheckMemoryFits(budget, *plan).ok());
  KvBudget fraction = Fraction(1.0, 464 * kMiB, 300 * kMiB, 100 * kMiB);
  plan = PlanKvCapacity(config, DType::kF16, 16, 2048, fraction);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(CheckMemoryFits(fraction, *plan).ok());
}

// ---- the weights on the device ------------------------------------------------------------------

TEST(CheckWeightsFitTest, FitsUpToTheFreeBytes) {
  EXPECT_TRUE(CheckWeightsFit(1000, DType::kF32, 1000, "CUDA device 0 (NVIDIA H200)").ok());
  EXPECT_TRUE(CheckWeightsFit(0, DType::kF16, 0, "CUDA device 0 (NVIDIA H200)").ok());
}

TEST(CheckWeightsFitTest, TooLargeSaysTheModelDoesNotFitWithBothSizes) {
  constexpr int64_t kGiB = int64_t{1} << 30;
  const absl::Status status =
      CheckWeightsFit(12 * kGiB, DType::kF32, 8 * kGiB + 1, "CUDA device 0 (NVIDIA H200)");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(status.message(),
            "model does not fit: its f32 weights need 12884901888 bytes (12.0 GiB), CUDA "
            "device 0 (NVIDIA H200) has 8589934593 bytes (8.0 GiB) free (--weight-dtype f16 or "
            "bf16 halves them)");
}

TEST(CheckWeightsFitTest, NarrowWeightsNameTheirDtypeWithoutTheHalvingHint) {
  const absl::Status status = CheckWeightsFit(3000, DType::kBF16, 2000, "CUDA device 0 (X)");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(status.message(),
            "model does not fit: its bf16 weights need 3000 bytes (2.9 KiB), CUDA device 0 (X) "
            "has 2000 bytes (2.0 KiB) free");
}

// ---- host memory --------------------------------------------------------------------------------

TEST(HostMemoryTest, IsPositive) { EXPECT_GT(HostMemoryBytes(), 0); }

TEST(HostMemoryTest, ParsesCgroupLimitFiles) {
  EXPECT_EQ(ParseCgroupMemoryLimit("1073741824\n"), 1073741824);
  EXPECT_EQ(ParseCgroupMemoryLimit("max\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryLimit(""), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryLimit("0"), std::nullopt);
  EXPECT_EQ(ParseCgroupMemoryLimit("12abc"), std::nullopt);
}

}  // namespace
}  // namespace mlkv
