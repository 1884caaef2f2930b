// Decode throughput of the CPU engine on a Pythia-160M-shaped model (random float32 weights),
// with the limits it is measured against: at batch 1 the time to stream the weights once at the
// measured memory bandwidth, at large batch the time of the step's GEMMs alone.
//
//   decode_bench [--config FILE]... [--batch 1,8,32,128] [--context 512] [--steps 8]
//                [--kv-dtype f32|bf16] [--json FILE]
//
// The KV cache of every sequence is filled with random values instead of a real prefill: a
// decode step's cost does not depend on the values, and a 128 x 512-token prefill would take
// minutes on two cores.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "absl/strings/str_split.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/random_model.h"
#include "kernels/cpu/cpu_backend.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/flags.h"

namespace mlkv {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Read bandwidth: sum a buffer much larger than the caches, best of a few passes.
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

struct Measurement {
  double step_seconds, gemm_seconds;
};

// Times `steps` decode steps of `batch` sequences that each already hold `context` tokens.
Measurement MeasureDecode(Model& model, Backend& backend, int64_t batch, int64_t context,
                          int64_t steps, DType kv_dtype) {
  const ModelConfig& c = model.config();
  const int64_t block_size = 16;
  const int64_t blocks_per_seq = (context + steps + block_size - 1) / block_size;
  auto cache = *KvCache::Create(c, {block_size, batch * blocks_per_seq, kv_dtype}, &backend);
  {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    const size_t elems = cache->options().num_blocks * block_size * c.num_key_value_heads * c.head_dim;
    std::vector<float> f32(elems);
    for (float& x : f32) x = normal(rng);
    const size_t bytes = elems * DTypeBytes(kv_dtype);  // bf16: the bit patterns are random too
    for (int64_t g = 0; g < cache->num_groups(); ++g) {
      backend.CopyToDevice(cache->group(g).k_cache, f32.data(), bytes);
      backend.CopyToDevice(cache->group(g).v_cache, f32.data(), bytes);
    }
  }
  StepBatch step;
  step.max_blocks_per_seq = blocks_per_seq;
  step.query_start.push_back(0);
  for (int64_t s = 0; s < batch; ++s) {
    step.token_ids.push_back(static_cast<int32_t>((s * 7919) % c.vocab_size));
    step.positions.push_back(0);
    step.slot_mapping.push_back(0);
    step.query_start.push_back(static_cast<int32_t>(s + 1));
    step.context_lens.push_back(0);
    step.logits_rows.push_back(static_cast<int32_t>(s));
    for (int64_t b = 0; b < blocks_per_seq; ++b) {
      step.block_tables.push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    }
  }
  std::vector<float> logits;
  auto run_step = [&](int64_t position) {
    for (int64_t s = 0; s < batch; ++s) {
      step.positions[s] = static_cast<int32_t>(position);
      step.slot_mapping[s] = (s * blocks_per_seq + position / block_size) * block_size +
                             position % block_size;
      step.context_lens[s] = static_cast<int32_t>(position + 1);
    }
    absl::Status status = model.Forward(step, *cache, &logits);
    if (!status.ok()) {
      std::fprintf(stderr, "decode_bench: %s\n", std::string(status.message()).c_str());
      std::exit(1);
    }
  };
  run_step(context);  // warm-up: allocates the workspace
  const auto start = Clock::now();
  for (int64_t i = 1; i < steps; ++i) run_step(context + i);
  Measurement m{Seconds(start) / static_cast<double>(steps - 1), 0.0};

  // The same step's GEMMs alone, on the same shapes and the same backend, each layer with
  // weights of its own (reusing one buffer would let the caches serve what memory must).
  const int64_t H = c.hidden_size, I = c.intermediate_size, kv = c.num_key_value_heads * c.head_dim;
  auto in = *backend.Allocate(batch * std::max(H, I) * 4);
  auto out = *backend.Allocate(batch * std::max({H, I, c.vocab_size}) * 4);
  auto bias = *backend.Allocate(std::max({H, I}) * 4);
  struct LayerWeights { std::unique_ptr<DeviceBuffer> q, k, v, o, fc_in, fc_out; };
  std::vector<LayerWeights> weights(c.num_hidden_layers);
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    LayerWeights& w = weights[layer];
    w.q = *backend.Allocate(H * H * 4);
    if (c.is_kv_layer(layer)) {
      w.k = *backend.Allocate(kv * H * 4);
      w.v = *backend.Allocate(kv * H * 4);
    }
    w.o = *backend.Allocate(H * H * 4);
    w.fc_in = *backend.Allocate(I * H * 4);
    w.fc_out = *backend.Allocate(H * I * 4);
  }
  auto lm_head = *backend.Allocate(c.vocab_size * H * 4);
  auto gemms = [&] {
    float *x = in->as<float>(), *y = out->as<float>(), *b = bias->as<float>();
    for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
      const LayerWeights& w = weights[layer];
      backend.Linear(x, batch, H, w.q->as<float>(), b, H, y);
      if (w.k) {
        backend.Linear(x, batch, H, w.k->as<float>(), b, kv, y);
        backend.Linear(x, batch, H, w.v->as<float>(), b, kv, y);
      }
      backend.Linear(x, batch, H, w.o->as<float>(), b, H, y);
      backend.Linear(x, batch, H, w.fc_in->as<float>(), b, I, y);
      backend.Linear(x, batch, I, w.fc_out->as<float>(), b, H, y);
    }
    backend.Linear(x, batch, H, lm_head->as<float>(), nullptr, c.vocab_size, y);
    backend.Synchronize();
  };
  gemms();
  const auto gemm_start = Clock::now();
  for (int64_t i = 1; i < steps; ++i) gemms();
  m.gemm_seconds = Seconds(gemm_start) / static_cast<double>(steps - 1);
  return m;
}

int Main(int argc, char** argv) {
  auto flags = cli::Flags::Parse(std::vector<std::string>(argv + 1, argv + argc),
                                 {"config", "batch", "context", "steps", "kv-dtype", "json"});
  if (!flags.ok()) {
    std::fprintf(stderr, "decode_bench: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  const std::string config_path = flags->String("config", "configs/pythia-160m-mha-144.json");
  auto batches = flags->Has("batch") ? flags->IntList("batch", 1, 4096)
                                     : absl::StatusOr<std::vector<int64_t>>({1, 8, 32, 128});
  auto context = flags->Int("context", 512, 1, 1 << 20);
  auto steps = flags->Int("steps", 8, 2, 10000);
  const std::string kv_name = flags->String("kv-dtype", "f32");
  auto config = ModelConfig::FromFile(config_path);
  for (const absl::Status& s : {batches.status(), context.status(), steps.status(), config.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "decode_bench: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  if (kv_name != "f32" && kv_name != "bf16") {
    std::fprintf(stderr, "decode_bench: --kv-dtype: must be f32 or bf16\n");
    return 2;
  }
  const DType kv_dtype = kv_name == "f32" ? DType::kF32 : DType::kBF16;

  auto backend = CreateCpuBackend();
  auto model = *Model::Create(*config, RandomModelWeights(*config, 0), backend.get());
  const double bandwidth = MeasureReadBandwidthGBs();
  const double weight_bytes = static_cast<double>(config->num_parameters()) * 4.0;
  std::printf("model %s: %.1fM parameters, %.0f MB of float32 weights; KV %s\n", config_path.c_str(),
              config->num_parameters() / 1e6, weight_bytes / 1e6, kv_name.c_str());
  std::printf("measured read bandwidth %.1f GB/s -> batch-1 bound %.1f tok/s (weights once per step)\n",
              bandwidth, bandwidth * 1e9 / weight_bytes);
  std::printf("%6s %12s %12s %12s %14s\n", "batch", "step ms", "tok/s", "GEMMs ms", "step/GEMMs");
  nlohmann::json results = nlohmann::json::array();
  for (int64_t batch : *batches) {
    const Measurement m = MeasureDecode(*model, *backend, batch, *context, *steps, kv_dtype);
    std::printf("%6lld %12.2f %12.1f %12.2f %14.2f\n", static_cast<long long>(batch),
                m.step_seconds * 1e3, batch / m.step_seconds, m.gemm_seconds * 1e3,
                m.step_seconds / m.gemm_seconds);
    std::fflush(stdout);
    results.push_back({{"batch", batch},
                       {"step_ms", m.step_seconds * 1e3},
                       {"tokens_per_s", batch / m.step_seconds},
                       {"gemm_ms", m.gemm_seconds * 1e3}});
  }
  if (flags->Has("json")) {
    std::ofstream(flags->String("json", "")) << nlohmann::json{
        {"config", config_path}, {"bandwidth_gb_s", bandwidth}, {"results", results}}.dump(2);
  }
  return 0;
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) { return mlkv::Main(argc, argv); }
