// Seeded random GPT-NeoX/MLKV checkpoints, for tests and benchmarks of any variant without
// downloading weights.
#ifndef MLKV_MODEL_RANDOM_MODEL_H_
#define MLKV_MODEL_RANDOM_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace mlkv {

// Random float32 weights for `config`, a pure function of (config, seed) on every platform.
// Scales keep activations O(1) at any depth and make logits spread (std about 2), so greedy
// and sampled decoding both have something to choose: see random_model.cc.
ModelHostWeights RandomModelWeights(const ModelConfig& config, uint64_t seed);

// A byte-level BPE tokenizer.json (Hugging Face format) for a model of `config`, so that a random
// model takes and returns text: the 256 bytes and "<|endoftext|>" (a special token) with no
// merges. "<|endoftext|>" gets config.eos_token_id, so generation stops where the tokenizer says
// the text ends; the bytes take the other ids from 0 up. nullopt when vocab_size < 257 leaves no
// room for all 257 tokens.
std::optional<nlohmann::json> ByteLevelTokenizerJson(const ModelConfig& config);

// Writes config.json (torch_dtype matching `dtype`) and model.safetensors with
// RandomModelWeights(config, seed) rounded to `dtype`: the fused query_key_value layout for
// standard MHA configs (as real Pythia, so transformers loads it), the split layout otherwise;
// and tokenizer.json from ByteLevelTokenizerJson when the vocabulary has room for it.
absl::Status WriteRandomModel(const ModelConfig& config, uint64_t seed, DType dtype,
                              const std::string& out_dir);

}  // namespace mlkv

#endif  // MLKV_MODEL_RANDOM_MODEL_H_
