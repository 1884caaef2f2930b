// Decode throughput of the engine's model step on a Pythia-160M-shaped model (random
// weights) or a checkpoint's (--model), on the CPU or the CUDA backend, with the limits it is
// measured against: at batch 1 the time to stream the weights once at the measured memory
// bandwidth, at large batch the time of the step's GEMMs alone. Each step takes every sequence's
// greedy token on the backend (StepBatch::argmax_rows), as the engine does for greedy requests.
//
//   decode_bench [--config FILE | --model DIR] [--device cpu|cuda] [--batch 1,8,32,128 |
//   --kv-cache-bytes B]
//                [--context 512] [--steps 8] [--kv-dtype f32|f16|bf16]
//                [--weight-dtype f32|f16|bf16] [--cuda-graphs] [--cuda-attention simt|tensor-core]
//                [--json FILE]
//
// --kv-cache-bytes B runs, instead of --batch, the batches 1, 8, 32, 128, ... (x4) up to the
// number of sequences of --context + --steps tokens that a KV cache of B bytes holds
// (planning/kv_capacity.h), and that number itself: run per variant, each at its own capacity
// within one budget. --cuda-graphs runs the steps as replayed CUDA graphs (each batch's first
// step, the warm-up, captures its graph).
//
// The KV cache of every sequence is filled with random values instead of a real prefill: a
// decode step's cost does not depend on the values, and a 128 x 512-token prefill would take
// minutes on two cores.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/flags.h"
#include "cli/model_flags.h"
#include "common/half.h"
#include "common/status_macros.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "kernels/cuda/device_info.h"
#include "model/model_weights.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "planning/kv_capacity.h"

namespace mlkv {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBlockSize = 16;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Host read bandwidth: sum a buffer much larger than the caches, best of a few passes.
double MeasureReadBandwidthGBs() {
  std::vector<float> data(256 << 20, 1.0f);  // 1 GiB
  double best = 0.0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto start = Clock::now();
    float sum = 0.0f;
#pragma omp parallel for simd reduction(+ : sum)
    for (size_t i = 0; i < data.size(); ++i) sum += data[i];
    const double seconds = Seconds(start);
    if (sum != static_cast<float>(data.size()) && sum < 0) std::puts("");  // keep the sum live
    best = std::max(best, data.size() * sizeof(float) / seconds / 1e9);
  }
  return best;
}

struct Bandwidth {
  double gb_s;
  const char* what;
};

// The rate the weights can stream at on `backend`'s memory. On a GPU a device-to-device copy
// (read + write counted), the same ceiling cuda_attention_bench quotes: there is no read-only
// probe there, and a copy is what memory-bound kernels get close to.
absl::StatusOr<Bandwidth> MeasureBandwidth(const Backend& backend) {
  if (backend.name() != "cuda") return Bandwidth{MeasureReadBandwidthGBs(), "host read"};
  ASSIGN_OR_RETURN(double bytes_per_s, MeasureCopyBandwidth(0, size_t{512} << 20, 10));
  return Bandwidth{bytes_per_s / 1e9, "device-to-device copy, read + write"};
}

// Fills every group's K and V pools with random values through the backend (the pools may be
// device memory). The step's cost does not depend on the values, so one chunk of at most 16M
// normal floats (f16, bf16: rounded) is tiled over the pools: a GPU's budget holds billions of
// elements, too many to draw one by one.
void FillRandom(Backend& backend, const KvCache& cache) {
  const KvCacheView& view = cache.group(0);  // every group has the same shape
  const int64_t pool_elems = view.num_blocks * view.block_size * view.num_kv_heads * view.head_dim;
  const int64_t chunk_elems = std::min<int64_t>(pool_elems, 16 << 20);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> f32(chunk_elems);
  for (float& x : f32) x = normal(rng);
  std::vector<uint16_t> half;
  const void* chunk = f32.data();
  if (view.dtype != DType::kF32) {
    half.resize(chunk_elems);
    std::transform(f32.begin(), f32.end(), half.begin(),
                   view.dtype == DType::kF16 ? FloatToF16 : FloatToBf16);
    chunk = half.data();
  }
  const int64_t elem_bytes = DTypeBytes(view.dtype);
  for (int64_t g = 0; g < cache.num_groups(); ++g) {
    for (void* pool : {cache.group(g).k_cache, cache.group(g).v_cache}) {
      for (int64_t e = 0; e < pool_elems; e += chunk_elems) {
        backend.CopyToDevice(static_cast<char*>(pool) + e * elem_bytes, chunk,
                             std::min(chunk_elems, pool_elems - e) * elem_bytes);
      }
    }
  }
}

struct Measurement {
  double step_seconds, gemm_seconds;
};

// Times `steps` decode steps of `batch` sequences that each already hold `context` tokens.
absl::StatusOr<Measurement> MeasureDecode(Model& model, Backend& backend, int64_t batch,
                                          int64_t context, int64_t steps, DType kv_dtype) {
  const ModelConfig& c = model.config();
  const int64_t blocks_per_seq = (context + steps + kBlockSize - 1) / kBlockSize;
  ASSIGN_OR_RETURN(auto cache,
                   KvCache::Create(c, {kBlockSize, batch * blocks_per_seq, kv_dtype}, &backend));
  FillRandom(backend, *cache);
  StepBatch step;
  step.max_blocks_per_seq = blocks_per_seq;
  step.query_start.push_back(0);
  for (int64_t s = 0; s < batch; ++s) {
    step.token_ids.push_back(static_cast<int32_t>((s * 7919) % c.vocab_size));
    step.positions.push_back(0);
    step.slot_mapping.push_back(0);
    step.query_start.push_back(static_cast<int32_t>(s + 1));
    step.context_lens.push_back(0);
    step.argmax_rows.push_back(static_cast<int32_t>(s));
    for (int64_t b = 0; b < blocks_per_seq; ++b) {
      step.block_tables.push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    }
  }
  StepOutput output;
  auto run_step = [&](int64_t position) {
    for (int64_t s = 0; s < batch; ++s) {
      step.positions[s] = static_cast<int32_t>(position);
      step.slot_mapping[s] =
          (s * blocks_per_seq + position / kBlockSize) * kBlockSize + position % kBlockSize;
      step.context_lens[s] = static_cast<int32_t>(position + 1);
    }
    return model.Forward(step, *cache, &output);
  };
  RETURN_IF_ERROR(run_step(context));  // warm-up: allocates the workspace
  const auto start = Clock::now();
  for (int64_t i = 1; i < steps; ++i) RETURN_IF_ERROR(run_step(context + i));
  // Forward already waits for the backend when it copies the greedy tokens to the host; the
  // timing should not rest on that detail.
  backend.Synchronize();
  Measurement m{Seconds(start) / static_cast<double>(steps - 1), 0.0};

  // The same step's GEMMs alone, on the same shapes, backend and weight dtype, each layer with
  // weights of its own (reusing one buffer would let the caches serve what memory must).
  const int64_t H = c.hidden_size, I = c.intermediate_size, kv = c.num_key_value_heads * c.head_dim;
  const DType weight_dtype = model.weight_dtype();
  const int64_t wb = DTypeBytes(weight_dtype);
  const auto weight = [&](const std::unique_ptr<DeviceBuffer>& buffer) {
    return WeightView(buffer->data(), weight_dtype);
  };
  ASSIGN_OR_RETURN(auto in, backend.Allocate(batch * std::max(H, I) * 4));
  ASSIGN_OR_RETURN(auto out, backend.Allocate(batch * std::max({H, I, c.vocab_size}) * 4));
  ASSIGN_OR_RETURN(auto bias, backend.Allocate(std::max({H, I}) * 4));
  struct LayerWeights {
    std::unique_ptr<DeviceBuffer> q, k, v, o, fc_in, fc_out;
  };
  std::vector<LayerWeights> weights(c.num_hidden_layers);
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    LayerWeights& w = weights[layer];
    ASSIGN_OR_RETURN(w.q, backend.Allocate(H * H * wb));
    if (c.is_kv_layer(layer)) {
      ASSIGN_OR_RETURN(w.k, backend.Allocate(kv * H * wb));
      ASSIGN_OR_RETURN(w.v, backend.Allocate(kv * H * wb));
    }
    ASSIGN_OR_RETURN(w.o, backend.Allocate(H * H * wb));
    ASSIGN_OR_RETURN(w.fc_in, backend.Allocate(I * H * wb));
    ASSIGN_OR_RETURN(w.fc_out, backend.Allocate(H * I * wb));
  }
  ASSIGN_OR_RETURN(auto lm_head, backend.Allocate(c.vocab_size * H * wb));
  auto gemms = [&] {
    float *x = in->as<float>(), *y = out->as<float>(), *b = bias->as<float>();
    constexpr LinearEpilogue store = LinearEpilogue::kStore;  // the GEMM and its bias only
    for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
      const LayerWeights& w = weights[layer];
      backend.Linear(x, batch, H, weight(w.q), b, H, store, y);
      if (w.k) {
        backend.Linear(x, batch, H, weight(w.k), b, kv, store, y);
        backend.Linear(x, batch, H, weight(w.v), b, kv, store, y);
      }
      backend.Linear(x, batch, H, weight(w.o), b, H, store, y);
      backend.Linear(x, batch, H, weight(w.fc_in), b, I, store, y);
      backend.Linear(x, batch, I, weight(w.fc_out), b, H, store, y);
    }
    backend.Linear(x, batch, H, weight(lm_head), nullptr, c.vocab_size, store, y);
    backend.Synchronize();
  };
  gemms();
  const auto gemm_start = Clock::now();
  for (int64_t i = 1; i < steps; ++i) gemms();
  m.gemm_seconds = Seconds(gemm_start) / static_cast<double>(steps - 1);
  return m;
}

// 1, 8, 32, 128, ... (x4) below `capacity`, then `capacity` itself.
std::vector<int64_t> BatchLadder(int64_t capacity) {
  std::vector<int64_t> batches;
  for (int64_t b = 1; b < capacity; b = b == 1 ? 8 : b * 4) batches.push_back(b);
  batches.push_back(capacity);
  return batches;
}

absl::Status Run(const cli::Flags& flags) {
  if (flags.Has("config") && flags.Has("model")) {
    return absl::InvalidArgumentError("--config and --model: give one (a model has its config)");
  }
  const std::string model_dir = flags.String("model", "");
  const std::string config_path = model_dir.empty()
                                      ? flags.String("config", "configs/pythia-160m-mha-144.json")
                                      : model_dir + "/config.json";
  absl::StatusOr<ModelConfig> config_or = ModelConfig::FromFile(config_path);
  if (!config_or.ok()) {
    return absl::Status(
        config_or.status().code(),
        absl::StrCat(model_dir.empty() ? "--config: " : "--model: ", config_or.status().message()));
  }
  const ModelConfig& config = *config_or;
  ASSIGN_OR_RETURN(const int64_t context, flags.Int("context", 512, 1, 1 << 20));
  ASSIGN_OR_RETURN(const int64_t steps, flags.Int("steps", 8, 2, 10000));
  ASSIGN_OR_RETURN(const DType kv_dtype, cli::DTypeFromFlags(flags, "kv-dtype"));
  ASSIGN_OR_RETURN(const DType weight_dtype, cli::DTypeFromFlags(flags, "weight-dtype"));
  nlohmann::json report = {{"config", config_path},
                           {"context", context},
                           {"steps", steps},
                           {"kv_dtype", DTypeName(kv_dtype)},
                           {"weight_dtype", DTypeName(weight_dtype)},
                           {"cuda_graphs", flags.Switch("cuda-graphs")},
                           {"cuda_attention", flags.String("cuda-attention", "simt")}};
  std::vector<int64_t> batches = {1, 8, 32, 128};
  std::string budget_line;
  if (flags.Has("kv-cache-bytes")) {
    if (flags.Has("batch")) {
      return absl::InvalidArgumentError(
          "--batch and --kv-cache-bytes: give one; the budget sets the batches");
    }
    KvBudget budget;
    ASSIGN_OR_RETURN(budget.kv_cache_bytes,
                     flags.OptionalInt("kv-cache-bytes", 1, std::numeric_limits<int64_t>::max()));
    // Every sequence holds context + steps tokens by the last step.
    absl::StatusOr<KvCapacity> capacity =
        PlanKvCapacity(config, kv_dtype, kBlockSize, context + steps, budget);
    if (!capacity.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--kv-cache-bytes with --context ", context,
                                                     " + --steps ", steps, ": ",
                                                     capacity.status().message()));
    }
    batches = BatchLadder(capacity->max_concurrent_sequences);
    budget_line = absl::StrFormat(
        "KV budget %d bytes (%.2f GiB): %d blocks of %d tokens at %d bytes per token -> capacity"
        " %d sequences of %d tokens",
        *budget.kv_cache_bytes, *budget.kv_cache_bytes / double{1 << 30}, capacity->num_blocks,
        kBlockSize, capacity->kv_bytes_per_token, capacity->max_concurrent_sequences,
        context + steps);
    report["kv_cache_bytes"] = *budget.kv_cache_bytes;
    report["capacity"] = capacity->max_concurrent_sequences;
  } else if (flags.Has("batch")) {
    ASSIGN_OR_RETURN(batches, flags.IntList("batch", 1, 1 << 20));
  }

  // A step costs the same whatever the weights' values; --model measures a checkpoint's own.
  ModelHostWeights weights;
  if (model_dir.empty()) {
    weights = RandomModelWeights(config, 0);
  } else {
    absl::StatusOr<ModelHostWeights> loaded = LoadModelWeights(config, model_dir);
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("--model: ", loaded.status().message()));
    }
    weights = *std::move(loaded);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, cli::BackendFromFlags(flags, 0, "cpu"));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                   Model::Create(config, std::move(weights), backend.get(), weight_dtype));
  if (flags.Switch("cuda-graphs")) {
    // Every batch's steps as replayed graphs: the workspace reserved for the largest batch fixes
    // the graphs' sizes (Model::EnableDecodeGraphs).
    const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
    const int64_t blocks_per_seq = (context + steps + kBlockSize - 1) / kBlockSize;
    RETURN_IF_ERROR(model->ReserveWorkspace({max_batch, max_batch, blocks_per_seq}));
    RETURN_IF_ERROR(model->EnableDecodeGraphs());
  }
  ASSIGN_OR_RETURN(const Bandwidth bandwidth, MeasureBandwidth(*backend));
  const double weight_bytes = static_cast<double>(config.weight_bytes(weight_dtype));
  std::printf(
      "model %s on %s: %.1fM parameters, %.0f MB of %s weights; KV %s; context %lld,"
      " %lld steps (1 warm-up); greedy tokens taken on the backend (argmax_rows)\n",
      config_path.c_str(), backend->name().c_str(), config.num_parameters() / 1e6,
      weight_bytes / 1e6, DTypeName(weight_dtype), DTypeName(kv_dtype),
      static_cast<long long>(context), static_cast<long long>(steps));
  std::printf(
      "measured bandwidth %.1f GB/s (%s) -> batch-1 bound %.1f tok/s (weights once per"
      " step)\n",
      bandwidth.gb_s, bandwidth.what, bandwidth.gb_s * 1e9 / weight_bytes);
  if (!budget_line.empty()) std::printf("%s\n", budget_line.c_str());
  std::printf("%6s %12s %12s %12s %14s\n", "batch", "step ms", "tok/s", "GEMMs ms", "step/GEMMs");
  std::fflush(stdout);
  nlohmann::json results = nlohmann::json::array();
  for (int64_t batch : batches) {
    ASSIGN_OR_RETURN(const Measurement m,
                     MeasureDecode(*model, *backend, batch, context, steps, kv_dtype));
    std::printf("%6lld %12.2f %12.1f %12.2f %14.2f\n", static_cast<long long>(batch),
                m.step_seconds * 1e3, batch / m.step_seconds, m.gemm_seconds * 1e3,
                m.step_seconds / m.gemm_seconds);
    std::fflush(stdout);
    results.push_back({{"batch", batch},
                       {"step_ms", m.step_seconds * 1e3},
                       {"tokens_per_s", batch / m.step_seconds},
                       {"gemm_ms", m.gemm_seconds * 1e3}});
  }
  if (flags.Switch("cuda-graphs")) {
    // Zero where the backend captures nothing (or a capture failed: logged): steps ran eagerly.
    std::printf("decode graphs captured: %lld\n",
                static_cast<long long>(model->num_decode_graphs()));
    report["decode_graphs_captured"] = model->num_decode_graphs();
  }
  if (flags.Has("json")) {
    report["device"] = backend->name();
    report["bandwidth_gb_s"] = bandwidth.gb_s;
    report["bandwidth_kind"] = bandwidth.what;
    report["results"] = results;
    std::ofstream(flags.String("json", "")) << report.dump(2);
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  absl::StatusOr<cli::Flags> flags =
      cli::Flags::Parse(std::vector<std::string>(argv + 1, argv + argc),
                        {"config", "model", "device", "batch", "kv-cache-bytes", "context", "steps",
                         "kv-dtype", "weight-dtype", "json", "cuda-attention"},
                        {"cuda-graphs"});
  if (flags.ok() && cli::PrintUsageIfAsked(*flags, "decode_bench")) return 0;
  const absl::Status status = flags.ok() ? Run(*flags) : flags.status();
  if (!status.ok()) {
    std::fprintf(stderr, "decode_bench: %s\n", std::string(status.message()).c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) { return mlkv::Main(argc, argv); }
