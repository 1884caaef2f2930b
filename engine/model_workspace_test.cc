// The activation workspace: its size worked by hand, the bytes the model really allocates for a
// reserve, steps within the reserve allocating nothing (in the model and in a running engine),
// growth beyond it for direct callers, and an out-of-memory reserve failing at start-up; the same
// for a backend's scratch, reserved by the engine for the ops of its largest step.
#include "engine/model_workspace.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/collecting_observer.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/testing/counting_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/random_model.h"

namespace mlkv {
namespace {

using ::mlkv::testing::CountingBackend;
using ::testing::AllOf;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// hidden 64 = 4 heads x 16, 2 KV heads (kv width 32), intermediate 96, vocab 97.
ModelConfig SmallConfig(int kv_heads = 2, int kv_layers = 3) {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 5},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.5},
                                       {"num_key_value_heads", kv_heads},
                                       {"num_key_value_layers", kv_layers},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

std::unique_ptr<CountingBackend> MakeBackend(int64_t limit_bytes = kInt64Max) {
  return std::make_unique<CountingBackend>(CreateCpuBackend(), limit_bytes);
}

std::unique_ptr<Model> MakeModel(const ModelConfig& config, Backend* backend) {
  auto model = Model::Create(config, RandomModelWeights(config, /*seed=*/3), backend);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// `num_seqs` prompts of `tokens_per_seq` tokens from position 0, every row wanting logits; the
// blocks of sequence s are s * blocks_per_seq onwards.
StepBatch Prefill(int64_t num_seqs, int64_t tokens_per_seq, int64_t block_size,
                  int64_t blocks_per_seq) {
  StepBatch batch;
  batch.max_blocks_per_seq = blocks_per_seq;
  batch.query_start.push_back(0);
  for (int64_t s = 0; s < num_seqs; ++s) {
    for (int64_t p = 0; p < tokens_per_seq; ++p) {
      batch.logits_rows.push_back(static_cast<int32_t>(batch.token_ids.size()));
      batch.token_ids.push_back(static_cast<int32_t>(1 + (s * 7 + p * 31) % 96));
      batch.positions.push_back(static_cast<int32_t>(p));
      batch.slot_mapping.push_back((s * blocks_per_seq + p / block_size) * block_size +
                                   p % block_size);
    }
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.context_lens.push_back(static_cast<int32_t>(tokens_per_seq));
    for (int64_t b = 0; b < blocks_per_seq; ++b) {
      batch.block_tables.push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    }
  }
  return batch;
}

TEST(WorkspaceBytesTest, WorkedByHand) {
  // Per token: 5 rows of 64 floats (hidden, normed, query, attention, logits_hidden), key and
  // value of 32, mlp 96, logits 97: 577 floats = 2308 bytes; token id, position, output row and
  // output token (4 each), the slot (8) and sampling parameters (32): 56 bytes. 2364 bytes per
  // token.
  // Per sequence: query_start and context_lens, 4 bytes each, and query_start's closing 4.
  // Per block-table entry: 4 bytes.
  const WorkspaceLimits limits{10, 3, 5};
  auto bytes = WorkspaceBytes(SmallConfig(), limits);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, 10 * 2364 + 3 * 8 + 4 + 3 * 5 * 4);

  auto buffers = WorkspaceBufferBytes(SmallConfig(), limits);
  ASSERT_TRUE(buffers.ok()) << buffers.status();
  for (int64_t b : *buffers) EXPECT_GT(b, 0) << "a buffer missing from the layout";
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kLogits)], 10 * 97 * 4);
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kKey)], 10 * 32 * 4);
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kSlotMapping)], 10 * 8);
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kSampleParams)], 10 * 32);
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kQueryStart)], 4 * 4);
  EXPECT_EQ((*buffers)[static_cast<size_t>(WorkspaceBuffer::kBlockTables)], 15 * 4);
}

TEST(WorkspaceBytesTest, LargestStepIsTheSchedulersLimits) {
  SchedulerConfig scheduler;
  scheduler.max_num_batched_tokens = 512;
  scheduler.max_num_seqs = 64;
  scheduler.block_size = 16;
  struct Case {
    int32_t max_model_len;
    int64_t tokens, blocks;
  };
  // Length 1: 64 sequences compute at most 64 tokens, whatever the token budget.
  for (const Case& c : {Case{256, 512, 16}, Case{257, 512, 17}, Case{1, 64, 1}}) {
    scheduler.max_model_len = c.max_model_len;
    const WorkspaceLimits limits = LargestStep(scheduler);
    EXPECT_EQ(limits.max_num_tokens, c.tokens) << "max_model_len " << c.max_model_len;
    EXPECT_EQ(limits.max_num_seqs, 64);
    EXPECT_EQ(limits.max_blocks_per_seq, c.blocks) << "max_model_len " << c.max_model_len;
  }
  // A token budget beyond what the sequences can compute in one step: 4 x 100 tokens at most.
  scheduler.max_num_seqs = 4;
  scheduler.max_model_len = 100;
  EXPECT_EQ(LargestStep(scheduler).max_num_tokens, 400);
}

TEST(WorkspaceBytesTest, RefusesNonPositiveLimitsAndOverflow) {
  const ModelConfig config = SmallConfig();
  auto expect_invalid = [&](const WorkspaceLimits& limits, const std::string& text) {
    auto bytes = WorkspaceBytes(config, limits);
    ASSERT_FALSE(bytes.ok()) << text;
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bytes.status().message()),
                AllOf(HasSubstr("activation workspace"), HasSubstr(text)));
  };
  expect_invalid({0, 1, 1}, "max_num_tokens must be positive, got 0");
  expect_invalid({1, -2, 1}, "max_num_seqs must be positive, got -2");
  expect_invalid({1, 1, 0}, "max_blocks_per_seq must be positive, got 0");
  expect_invalid({kInt64Max / 8, 1, 1}, "the hidden buffer for");
  expect_invalid({1, int64_t{1} << 40, int64_t{1} << 40}, "blocks per sequence overflows");
  // Every buffer fits 64 bits but their sum does not.
  expect_invalid({kInt64Max / (97 * 4) - 1, 1, 1}, "the total overflows");
}

class ModelReserveSizeTest : public ::testing::TestWithParam<int /*kv_heads*/> {};

TEST_P(ModelReserveSizeTest, AllocatesExactlyTheWorkspaceBytes) {
  const ModelConfig config = SmallConfig(GetParam(), GetParam() == 1 ? 1 : 5);
  for (const WorkspaceLimits& limits :
       {WorkspaceLimits{1, 1, 1}, WorkspaceLimits{512, 64, 16}, WorkspaceLimits{2048, 256, 128}}) {
    auto backend = MakeBackend();
    std::unique_ptr<Model> model = MakeModel(config, backend.get());
    ASSERT_NE(model, nullptr);
    const int64_t weight_allocations = backend->num_allocations();
    const int64_t weight_bytes = backend->allocated_bytes();
    ASSERT_TRUE(model->ReserveWorkspace(limits).ok());
    auto expected = WorkspaceBytes(config, limits);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(backend->allocated_bytes() - weight_bytes, *expected)
        << limits.max_num_tokens << " tokens";
    EXPECT_EQ(backend->num_allocations() - weight_allocations,
              static_cast<int64_t>(kNumWorkspaceBuffers));
    // A second reserve within the first allocates nothing.
    ASSERT_TRUE(model->ReserveWorkspace({1, 1, 1}).ok());
    EXPECT_EQ(backend->allocated_bytes() - weight_bytes, *expected);
  }
}

INSTANTIATE_TEST_SUITE_P(KvHeads, ModelReserveSizeTest, ::testing::Values(1, 2, 4));

TEST(ModelReserveTest, StepsWithinTheReserveAllocateNothingAndLargerOnesGrow) {
  constexpr int64_t kBlockSize = 16, kBlocksPerSeq = 4;
  const ModelConfig config = SmallConfig();
  auto backend = MakeBackend();
  std::unique_ptr<Model> model = MakeModel(config, backend.get());
  auto cache = KvCache::Create(config, {kBlockSize, 8 * kBlocksPerSeq, DType::kF32}, backend.get());
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE(model->ReserveWorkspace({64, 4, kBlocksPerSeq}).ok());

  // The same steps on a model that grows its workspace on demand give the same logits.
  auto plain_backend = CreateCpuBackend();
  std::unique_ptr<Model> plain = MakeModel(config, plain_backend.get());
  auto plain_cache =
      KvCache::Create(config, {kBlockSize, 8 * kBlocksPerSeq, DType::kF32}, plain_backend.get());
  ASSERT_TRUE(plain_cache.ok()) << plain_cache.status();

  const int64_t allocations = backend->num_allocations();
  StepOutput output, plain_output;
  for (const auto& [seqs, tokens] :
       std::vector<std::pair<int64_t, int64_t>>{{4, 16}, {1, 64}, {1, 1}, {3, 5}, {4, 1}}) {
    SCOPED_TRACE(absl::StrCat(seqs, " sequences of ", tokens, " tokens"));
    const StepBatch batch = Prefill(seqs, tokens, kBlockSize, kBlocksPerSeq);
    ASSERT_TRUE(model->Forward(batch, **cache, &output).ok());
    ASSERT_TRUE(plain->Forward(batch, **plain_cache, &plain_output).ok());
    EXPECT_THAT(output.logits, Pointwise(FloatNear(1e-5f), plain_output.logits));
  }
  EXPECT_EQ(backend->num_allocations(), allocations);

  // Beyond the reserve (8 sequences; 80 tokens) the workspace grows instead of failing.
  for (const StepBatch& batch :
       {Prefill(8, 2, kBlockSize, kBlocksPerSeq), Prefill(1, 80, kBlockSize, kBlocksPerSeq + 2)}) {
    ASSERT_TRUE(model->Forward(batch, **cache, &output).ok());
    ASSERT_TRUE(plain->Forward(batch, **plain_cache, &plain_output).ok());
    EXPECT_THAT(output.logits, Pointwise(FloatNear(1e-5f), plain_output.logits));
  }
  EXPECT_GT(backend->num_allocations(), allocations);
}

TEST(ModelReserveTest, ADeviceTooSmallFailsAtTheReserveNamingTheWorkspace) {
  const ModelConfig config = SmallConfig();
  const WorkspaceLimits limits{512, 64, 16};
  auto workspace = WorkspaceBytes(config, limits);
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  int64_t weight_bytes = 0;
  {
    auto counting = MakeBackend();
    ASSERT_NE(MakeModel(config, counting.get()), nullptr);
    weight_bytes = counting->allocated_bytes();
  }
  auto backend = MakeBackend(weight_bytes + *workspace - 1);
  std::unique_ptr<Model> model = MakeModel(config, backend.get());
  ASSERT_NE(model, nullptr);
  const absl::Status status = model->ReserveWorkspace(limits);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(absl::StrCat("activation workspace of ", *workspace, " bytes")),
                    HasSubstr("512 tokens, 64 sequences, 16 blocks per sequence")));
}

TEST(ModelReserveTest, RefusesNonPositiveLimits) {
  auto backend = MakeBackend();
  std::unique_ptr<Model> model = MakeModel(SmallConfig(), backend.get());
  const absl::Status status = model->ReserveWorkspace({16, 0, 4});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_num_seqs must be positive"));
}

// ---- the engine reserves at start-up ------------------------------------------------------------

EngineOptions SmallEngineOptions() {
  EngineOptions options;
  options.scheduler.block_size = 16;
  options.scheduler.num_blocks = 64;
  options.scheduler.max_num_batched_tokens = 48;  // prompts are chunked
  options.scheduler.max_num_seqs = 4;
  options.scheduler.max_model_len = 128;
  return options;
}

// The largest step of SmallEngineOptions' scheduler: 48 tokens, tables of 128 / 16 = 8 blocks.
TEST(WorkspaceBytesTest, LargestStepOpsWorkedByHand) {
  const OpLimits ops =
      LargestStepOps(SmallConfig(), DType::kBF16, DType::kF16, SmallEngineOptions().scheduler);
  EXPECT_EQ(ops.max_rows, 48);
  EXPECT_EQ(ops.max_linear_k, 96);  // the intermediate row, wider than hidden 64
  EXPECT_EQ(ops.weight_dtype, DType::kBF16);
  EXPECT_EQ(ops.num_heads, 4);
  EXPECT_EQ(ops.num_kv_heads, 2);
  EXPECT_EQ(ops.head_dim, 16);
  EXPECT_EQ(ops.max_context, 128);
  EXPECT_EQ(ops.kv_dtype, DType::kF16);
}

// Weights, workspace, the backend's scratch and the KV pool are all that is ever allocated.
TEST(EngineReserveTest, ServingAllocatesNothingAfterStartUp) {
  const ModelConfig config = SmallConfig();
  const EngineOptions options = SmallEngineOptions();
  auto owned = MakeBackend();
  CountingBackend* backend = owned.get();
  constexpr int64_t kScratchBytes = 3000;
  backend->set_scratch_bytes(kScratchBytes);
  std::unique_ptr<Model> model = MakeModel(config, backend);
  const int64_t weight_bytes = backend->allocated_bytes();
  auto engine = Engine::Create(options, std::move(owned), std::move(model));
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto workspace = WorkspaceBytes(config, LargestStep(options.scheduler));
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  const int64_t kv_bytes =
      options.scheduler.num_blocks * KvCache::BlockBytes(config, {16, 64, DType::kF32});
  EXPECT_EQ(backend->allocated_bytes(), weight_bytes + *workspace + kScratchBytes + kv_bytes);
  ASSERT_TRUE(backend->reserved_scratch_for().has_value());
  EXPECT_EQ(backend->reserved_scratch_for()->max_rows, 48);
  EXPECT_EQ(backend->reserved_scratch_for()->max_context, 128);

  // Six requests at once for four sequence slots: chunked prompts, batched decodes, and prompt
  // logprobs (a logits row for every prompt token).
  const int64_t allocations = backend->num_allocations();
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < 6; ++i) {
    EngineRequest request;
    for (int p = 0; p < 20 + 17 * i; ++p) request.prompt_token_ids.push_back(1 + (p * 13 + i) % 96);
    request.max_tokens = 8;
    request.ignore_eos = true;
    request.prompt_logprobs = true;
    request.sampling.temperature = 0.0f;
    observers.push_back(std::make_shared<CollectingObserver>());
    request.observer = observers.back();
    ASSERT_TRUE((*engine)->Submit(std::move(request)).ok());
  }
  for (const auto& observer : observers) {
    const RequestResult result = observer->Wait();
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.output_token_ids.size(), 8u);
  }
  EXPECT_EQ(backend->num_allocations(), allocations);
}

TEST(EngineReserveTest, ADeviceTooSmallForTheWorkspaceFailsAtCreate) {
  const ModelConfig config = SmallConfig();
  const EngineOptions options = SmallEngineOptions();
  int64_t weight_bytes = 0;
  {
    auto counting = MakeBackend();
    ASSERT_NE(MakeModel(config, counting.get()), nullptr);
    weight_bytes = counting->allocated_bytes();
  }
  auto backend = MakeBackend(weight_bytes + 1024);
  std::unique_ptr<Model> model = MakeModel(config, backend.get());
  auto engine = Engine::Create(options, std::move(backend), std::move(model));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kResourceExhausted) << engine.status();
  EXPECT_THAT(std::string(engine.status().message()), HasSubstr("activation workspace of"));
}

// A device with room for the workspace but not the scratch fails at start-up too, before the KV
// pool is allocated, not in a step.
TEST(EngineReserveTest, ADeviceTooSmallForTheScratchFailsAtCreate) {
  const ModelConfig config = SmallConfig();
  const EngineOptions options = SmallEngineOptions();
  auto workspace = WorkspaceBytes(config, LargestStep(options.scheduler));
  ASSERT_TRUE(workspace.ok()) << workspace.status();
  int64_t weight_bytes = 0;
  {
    auto counting = MakeBackend();
    ASSERT_NE(MakeModel(config, counting.get()), nullptr);
    weight_bytes = counting->allocated_bytes();
  }
  auto backend = MakeBackend(weight_bytes + *workspace + 1000);
  backend->set_scratch_bytes(1001);
  std::unique_ptr<Model> model = MakeModel(config, backend.get());
  auto engine = Engine::Create(options, std::move(backend), std::move(model));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kResourceExhausted) << engine.status();
  EXPECT_THAT(std::string(engine.status().message()), HasSubstr("cannot allocate 1001 bytes"));
}

}  // namespace
}  // namespace mlkv
