// Seeded random weights and their model directory; see random_model.h.
//
// Scales, chosen so that a random model behaves like a trained one in the ways tests notice:
// - linear weights N(0, 1/sqrt(fan_in)): each output keeps its input's variance, so q.k/sqrt(d)
//   has std ~1 (attention neither uniform nor hard) and the MLP neither vanishes nor explodes;
// - biases N(0, 0.1): present, so a dropped bias shows, but small;
// - layernorm gamma 1 + N(0, 0.1), beta N(0, 0.1): near identity, yet a swapped gamma/beta or a
//   missed layernorm changes the output;
// - embed_in N(0, 1): a unit-variance residual stream from the first layer;
// - embed_out N(0, 2/sqrt(H)): the final layernorm output has unit variance, so logits have std ~2
//   whatever the depth. Measured with transformers at H = 64, V = 300: the top token gets ~18% of
//   the mass on average (entropy 3.9 of 5.7 nats), far from uniform (sampling tests see
//   structure) and from one-hot (top-k/top-p have several candidates);
// - tied models: embed_in N(0, 2/sqrt(H)) instead, as it is also the output projection (with
//   N(0, 1) logits would have std sqrt(H), nearly one-hot); the layernorms absorb the smaller
//   residual stream this starts with.
#include "model/random_model.h"

#include <cmath>
#include <fstream>
#include <numbers>
#include <random>

#include "absl/strings/str_cat.h"
#include "model/model_writer.h"
#include "spdlog/spdlog.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/byte_level_bpe_json.h"

namespace mlkv {
namespace {

// std::normal_distribution's algorithm is left to the standard library, so the same seed could
// give other weights with another library; mt19937_64 itself is fully specified. Box-Muller on its
// output is therefore reproducible everywhere.
class NormalSource {
 public:
  explicit NormalSource(uint64_t seed) : engine_(seed) {}

  double Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // 53 random bits -> [0, 1); 1 - u lies in (0, 1], so the log is finite.
    const double u1 = 1.0 - static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  std::vector<float> Fill(int64_t n, double mean, double stddev) {
    std::vector<float> out(n);
    for (float& x : out) x = static_cast<float>(mean + stddev * Next());
    return out;
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

constexpr double kBiasStd = 0.1;
constexpr double kLayerNormStd = 0.1;

void RandomLinear(NormalSource& rng, int64_t out_features, int64_t in_features,
                  std::vector<float>* weight, std::vector<float>* bias) {
  *weight = rng.Fill(out_features * in_features, 0.0, 1.0 / std::sqrt(double(in_features)));
  *bias = rng.Fill(out_features, 0.0, kBiasStd);
}

void RandomLayerNorm(NormalSource& rng, int64_t size, std::vector<float>* gamma,
                     std::vector<float>* beta) {
  *gamma = rng.Fill(size, 1.0, kLayerNormStd);
  *beta = rng.Fill(size, 0.0, kLayerNormStd);
}

}  // namespace

ModelHostWeights RandomModelWeights(const ModelConfig& config, uint64_t seed) {
  NormalSource rng(seed);
  const int64_t H = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  const int64_t q_rows = config.num_attention_heads * config.head_dim;
  const int64_t kv_rows = config.num_key_value_heads * config.head_dim;
  // The draw order below is part of the output: changing it changes every seeded model.
  ModelHostWeights w;
  const double output_std = 2.0 / std::sqrt(double(H));
  w.embed_in = rng.Fill(V * H, 0.0, config.tie_word_embeddings ? output_std : 1.0);
  RandomLayerNorm(rng, H, &w.final_layernorm_weight, &w.final_layernorm_bias);
  if (!config.tie_word_embeddings) w.embed_out = rng.Fill(V * H, 0.0, output_std);
  w.layers.resize(config.num_hidden_layers);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    LayerHostWeights& l = w.layers[layer];
    RandomLayerNorm(rng, H, &l.input_layernorm_weight, &l.input_layernorm_bias);
    RandomLayerNorm(rng, H, &l.post_attention_layernorm_weight, &l.post_attention_layernorm_bias);
    RandomLinear(rng, q_rows, H, &l.query_weight, &l.query_bias);
    if (config.is_kv_layer(layer)) {
      RandomLinear(rng, kv_rows, H, &l.key_weight, &l.key_bias);
      RandomLinear(rng, kv_rows, H, &l.value_weight, &l.value_bias);
    }
    RandomLinear(rng, H, q_rows, &l.dense_weight, &l.dense_bias);
    RandomLinear(rng, I, H, &l.dense_h_to_4h_weight, &l.dense_h_to_4h_bias);
    RandomLinear(rng, H, I, &l.dense_4h_to_h_weight, &l.dense_4h_to_h_bias);
  }
  return w;
}

std::optional<nlohmann::json> ByteLevelTokenizerJson(const ModelConfig& config) {
  constexpr int64_t kNumTokens = 257;
  if (config.vocab_size < kNumTokens) return std::nullopt;
  const int64_t eos = config.eos_token_id;
  nlohmann::json vocab = nlohmann::json::object();
  vocab["<|endoftext|>"] = eos;
  for (int64_t b = 0, id = 0; b < 256; ++b, ++id) {
    if (id == eos) ++id;
    vocab[byte_level::BytesToToken(std::string(1, static_cast<char>(b)))] = id;
  }
  return ByteLevelBpeJson(std::move(vocab), nlohmann::json::array(), {{eos, "<|endoftext|>"}});
}

absl::Status WriteRandomModel(const ModelConfig& config, uint64_t seed, DType dtype,
                              const std::string& out_dir) {
  const QkvLayout layout = config.is_standard_mha() ? QkvLayout::kFused : QkvLayout::kSplit;
  absl::Status status =
      WriteModelDirectory(config, RandomModelWeights(config, seed), dtype, layout, out_dir);
  if (!status.ok()) return status;
  std::optional<nlohmann::json> tokenizer = ByteLevelTokenizerJson(config);
  if (!tokenizer) {
    // Small test vocabularies cannot hold the bytes; such a model is driven by token ids only.
    spdlog::info("random-model: vocab_size {} < 257, so no tokenizer.json (token ids only)",
                 config.vocab_size);
    return absl::OkStatus();
  }
  const std::string path = out_dir + "/tokenizer.json";
  std::ofstream out(path, std::ios::binary);
  out << tokenizer->dump(2) << "\n";
  if (!out.good()) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace mlkv
