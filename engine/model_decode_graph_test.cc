// Decode steps with Model::EnableDecodeGraphs on the CPU backend, which captures nothing and so
// runs every step padded to its bucket, eagerly: the tokens equal those of a model without
// graphs fed the same steps, for mixes of greedy and sampled rows and batch sizes between
// buckets, and the padding writes nothing to the KV cache. (Capture and replay need a GPU:
// tests/cuda/cuda_model_test.cc runs the same script there.)
#include <vector>

#include "engine/model.h"
#include "engine/testing/decode_steps.h"
#include "engine/testing/recording_backend.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

using testing::DecodeStepsConfig;
using testing::kDecodeBlockSize;
using testing::MakeModelAndCache;
using testing::ModelAndCache;

std::vector<float> Pool(Backend& backend, const KvCache& cache, int64_t group, bool keys) {
  const KvCacheView& view = cache.group(group);
  std::vector<float> host(view.num_blocks * view.num_kv_heads * view.block_size * view.head_dim);
  backend.CopyToHost(host.data(), keys ? view.k_cache : view.v_cache, host.size() * sizeof(float));
  return host;
}

TEST(ModelDecodeGraphTest, PaddedStepsGiveTheEagerTokensAndWriteNothingForThePadding) {
  auto backend = CreateCpuBackend();
  ModelAndCache eager = MakeModelAndCache(backend.get(), false);
  ModelAndCache graphed = MakeModelAndCache(backend.get(), true);
  testing::ExpectSameDecodeTokens(eager, graphed);
  EXPECT_EQ(graphed.model->num_decode_graphs(), 0) << "the CPU backend captures nothing";
  // The caches agree to float32 rounding (GEMMs over padded row counts may sum in another order),
  // and block 0, which every padded row reads but none may write, is still zero.
  const int64_t block_floats = kDecodeBlockSize * 16;  // one KV head of head_dim 16
  for (int64_t g = 0; g < eager.cache->num_groups(); ++g) {
    for (bool keys : {true, false}) {
      const std::vector<float> want = Pool(*backend, *eager.cache, g, keys);
      const std::vector<float> got = Pool(*backend, *graphed.cache, g, keys);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5) << "group " << g << ", element " << i;
      }
      for (int64_t i = 0; i < block_floats; ++i) {
        ASSERT_EQ(got[i], 0.0f) << "block 0, element " << i;
      }
    }
  }
}

// With a backend that records and replays ops as a CUDA graph does (their arguments frozen at
// capture), every bucket is captured once and replayed on the later steps, and the replayed steps
// still give the eager tokens: all that changes between steps reaches the ops through the
// workspace. Nothing but ops is issued during a capture (RecordingBackend checks).
TEST(ModelDecodeGraphTest, RecordedStepsReplayWithEachStepsInputs) {
  auto cpu = CreateCpuBackend();
  auto recording = std::make_unique<testing::RecordingBackend>(CreateCpuBackend());
  testing::RecordingBackend* recorder = recording.get();
  ModelAndCache eager = MakeModelAndCache(cpu.get(), false);
  ModelAndCache graphed = MakeModelAndCache(recorder, true);
  testing::ExpectSameDecodeTokens(eager, graphed);
  // Buckets 1, 4, 8 and 12 (batches of 1, 3, 5 and 8, and 11), each captured at its first step;
  // six decode steps per batch size, 5 x 6 = 30 in all.
  EXPECT_EQ(graphed.model->num_decode_graphs(), 4);
  EXPECT_EQ(recorder->num_captures(), 4);
  EXPECT_EQ(recorder->num_replays(), 30 - 4);
}

TEST(ModelDecodeGraphTest, NeedsTheWorkspaceReservedFirst) {
  auto backend = CreateCpuBackend();
  const ModelConfig config = DecodeStepsConfig();
  auto model = Model::Create(config, RandomModelWeights(config, 5), backend.get());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->EnableDecodeGraphs().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mlkv
