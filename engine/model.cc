// The forward pass; see model.h and model.md.
#include "engine/model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace mlkv {

struct Model::LayerBuffers {
  std::unique_ptr<DeviceBuffer> input_ln_weight, input_ln_bias, post_ln_weight, post_ln_bias;
  std::unique_ptr<DeviceBuffer> query_weight, query_bias;
  std::unique_ptr<DeviceBuffer> key_weight, key_bias, value_weight, value_bias;  // KV layers only
  std::unique_ptr<DeviceBuffer> dense_weight, dense_bias;
  std::unique_ptr<DeviceBuffer> fc_in_weight, fc_in_bias, fc_out_weight, fc_out_bias;
};

// Activations and the step's metadata on the backend, sized for `capacity` tokens and grown on
// demand, so steady-state steps allocate nothing.
struct Model::Workspace {
  int64_t token_capacity = 0, seq_capacity = 0, table_capacity = 0;
  std::unique_ptr<DeviceBuffer> hidden, normed, query, key, value, attention, projected, mlp;
  std::unique_ptr<DeviceBuffer> logits_hidden, logits;
  std::unique_ptr<DeviceBuffer> token_ids, positions, slot_mapping, logits_rows;
  std::unique_ptr<DeviceBuffer> query_start, context_lens, block_tables;
};

namespace {

absl::StatusOr<std::unique_ptr<DeviceBuffer>> Upload(Backend* backend,
                                                     const std::vector<float>& host) {
  ASSIGN_OR_RETURN(auto buffer, backend->Allocate(host.size() * sizeof(float)));
  backend->CopyToDevice(buffer->data(), host.data(), host.size() * sizeof(float));
  return buffer;
}

template <typename T>
void CopyVector(Backend& backend, DeviceBuffer& dst, const std::vector<T>& src) {
  backend.CopyToDevice(dst.data(), src.data(), src.size() * sizeof(T));
}

// [positions][r/2][2] of (cos, sin) of p * base^(-2i/r), computed in double.
std::vector<float> RotaryTable(const ModelConfig& c) {
  const int64_t r = c.rotary_dims;
  std::vector<float> table(c.max_position_embeddings * r);
  for (int64_t p = 0; p < c.max_position_embeddings; ++p) {
    for (int64_t i = 0; i < r / 2; ++i) {
      const double angle = static_cast<double>(p) *
                           std::pow(c.rotary_emb_base, -2.0 * static_cast<double>(i) / r);
      table[p * r + 2 * i] = static_cast<float>(std::cos(angle));
      table[p * r + 2 * i + 1] = static_cast<float>(std::sin(angle));
    }
  }
  return table;
}

float* F(const std::unique_ptr<DeviceBuffer>& b) { return b ? b->as<float>() : nullptr; }

}  // namespace

Model::Model(const ModelConfig& config, Backend* backend)
    : config_(config), backend_(backend), workspace_(std::make_unique<Workspace>()) {}

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const ModelConfig& config,
                                                     const ModelHostWeights& weights,
                                                     Backend* backend) {
  std::unique_ptr<Model> model(new Model(config, backend));
  ASSIGN_OR_RETURN(model->embed_in_, Upload(backend, weights.embed_in));
  if (!weights.embed_out.empty()) {
    ASSIGN_OR_RETURN(model->embed_out_, Upload(backend, weights.embed_out));
  }
  ASSIGN_OR_RETURN(model->final_ln_weight_, Upload(backend, weights.final_layernorm_weight));
  ASSIGN_OR_RETURN(model->final_ln_bias_, Upload(backend, weights.final_layernorm_bias));
  ASSIGN_OR_RETURN(model->rotary_table_, Upload(backend, RotaryTable(config)));
  for (const LayerHostWeights& w : weights.layers) {
    LayerBuffers b;
    ASSIGN_OR_RETURN(b.input_ln_weight, Upload(backend, w.input_layernorm_weight));
    ASSIGN_OR_RETURN(b.input_ln_bias, Upload(backend, w.input_layernorm_bias));
    ASSIGN_OR_RETURN(b.post_ln_weight, Upload(backend, w.post_attention_layernorm_weight));
    ASSIGN_OR_RETURN(b.post_ln_bias, Upload(backend, w.post_attention_layernorm_bias));
    ASSIGN_OR_RETURN(b.query_weight, Upload(backend, w.query_weight));
    ASSIGN_OR_RETURN(b.query_bias, Upload(backend, w.query_bias));
    if (!w.key_weight.empty()) {
      ASSIGN_OR_RETURN(b.key_weight, Upload(backend, w.key_weight));
      ASSIGN_OR_RETURN(b.key_bias, Upload(backend, w.key_bias));
      ASSIGN_OR_RETURN(b.value_weight, Upload(backend, w.value_weight));
      ASSIGN_OR_RETURN(b.value_bias, Upload(backend, w.value_bias));
    }
    ASSIGN_OR_RETURN(b.dense_weight, Upload(backend, w.dense_weight));
    ASSIGN_OR_RETURN(b.dense_bias, Upload(backend, w.dense_bias));
    ASSIGN_OR_RETURN(b.fc_in_weight, Upload(backend, w.dense_h_to_4h_weight));
    ASSIGN_OR_RETURN(b.fc_in_bias, Upload(backend, w.dense_h_to_4h_bias));
    ASSIGN_OR_RETURN(b.fc_out_weight, Upload(backend, w.dense_4h_to_h_weight));
    ASSIGN_OR_RETURN(b.fc_out_bias, Upload(backend, w.dense_4h_to_h_bias));
    model->layers_.push_back(std::move(b));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_dir,
                                                   Backend* backend) {
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(model_dir + "/config.json"));
  ASSIGN_OR_RETURN(ModelHostWeights weights, LoadModelWeights(config, model_dir));
  return Create(config, weights, backend);
}

// A group whose layers all read rotated keys stores them rotated. Only in `unrotated` sharing
// mode with more than one layer in the group do the other layers read unrotated keys: then the
// group stores them unrotated and its KV layer rotates them as it reads (model.md: one stored
// copy of K, the other form derived at read time).
bool Model::GroupStoresRotatedKeys(int64_t group) const {
  return config_.kv_sharing_rope == KvSharingRope::kRotated || config_.group_num_layers(group) == 1;
}

absl::Status Model::CheckBatch(const StepBatch& batch, const KvCache& cache) const {
  const int64_t T = batch.num_tokens(), S = batch.num_seqs();
  const KvCacheOptions& kv = cache.options();
  if (T == 0 || S == 0) return absl::InvalidArgumentError("empty batch");
  if (static_cast<int64_t>(batch.positions.size()) != T ||
      static_cast<int64_t>(batch.slot_mapping.size()) != T ||
      static_cast<int64_t>(batch.query_start.size()) != S + 1 ||
      static_cast<int64_t>(batch.block_tables.size()) != S * batch.max_blocks_per_seq ||
      batch.query_start.front() != 0 || batch.query_start.back() != T) {
    return absl::InvalidArgumentError("inconsistent batch metadata sizes");
  }
  for (int64_t t = 0; t < T; ++t) {
    if (batch.token_ids[t] < 0 || batch.token_ids[t] >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", batch.token_ids[t],
                                                     " is outside the vocabulary [0, ",
                                                     config_.vocab_size, ")"));
    }
    if (batch.positions[t] < 0 || batch.positions[t] >= config_.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("position ", batch.positions[t], " is outside [0, ",
                       config_.max_position_embeddings, ") (max_position_embeddings)"));
    }
    if (batch.slot_mapping[t] < 0 || batch.slot_mapping[t] >= kv.num_blocks * kv.block_size) {
      return absl::InvalidArgumentError(absl::StrCat("KV slot ", batch.slot_mapping[t],
                                                     " is outside the cache"));
    }
  }
  for (int64_t s = 0; s < S; ++s) {
    const int32_t begin = batch.query_start[s], end = batch.query_start[s + 1];
    const int64_t context = batch.context_lens[s];
    if (end <= begin || context < end - begin ||
        context > batch.max_blocks_per_seq * kv.block_size ||
        batch.positions[end - 1] != context - 1) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, " of the batch is malformed"));
    }
    for (int64_t b = 0; b < (context + kv.block_size - 1) / kv.block_size; ++b) {
      const int32_t block = batch.block_tables[s * batch.max_blocks_per_seq + b];
      if (block < 0 || block >= kv.num_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("block id ", block, " is outside the cache"));
      }
    }
  }
  for (int32_t row : batch.logits_rows) {
    if (row < 0 || row >= T) return absl::InvalidArgumentError("logits row outside the batch");
  }
  return absl::OkStatus();
}

absl::Status Model::EnsureWorkspace(const StepBatch& batch) {
  Workspace& w = *workspace_;
  Backend& be = *backend_;
  const int64_t T = batch.num_tokens(), S = batch.num_seqs();
  const int64_t H = config_.hidden_size, kv = config_.num_key_value_heads * config_.head_dim;
  auto alloc = [&](int64_t elems, size_t elem_bytes) {
    return be.Allocate(static_cast<size_t>(elems) * elem_bytes);
  };
  if (T > w.token_capacity) {
    const int64_t n = std::max<int64_t>(T, 2 * w.token_capacity);
    ASSIGN_OR_RETURN(w.hidden, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.normed, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.query, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.key, alloc(n * kv, 4));
    ASSIGN_OR_RETURN(w.value, alloc(n * kv, 4));
    ASSIGN_OR_RETURN(w.attention, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.projected, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.mlp, alloc(n * config_.intermediate_size, 4));
    ASSIGN_OR_RETURN(w.logits_hidden, alloc(n * H, 4));
    ASSIGN_OR_RETURN(w.logits, alloc(n * config_.vocab_size, 4));
    ASSIGN_OR_RETURN(w.token_ids, alloc(n, 4));
    ASSIGN_OR_RETURN(w.positions, alloc(n, 4));
    ASSIGN_OR_RETURN(w.slot_mapping, alloc(n, 8));
    ASSIGN_OR_RETURN(w.logits_rows, alloc(n, 4));
    w.token_capacity = n;
  }
  if (S > w.seq_capacity) {
    const int64_t n = std::max<int64_t>(S, 2 * w.seq_capacity);
    ASSIGN_OR_RETURN(w.query_start, alloc(n + 1, 4));
    ASSIGN_OR_RETURN(w.context_lens, alloc(n, 4));
    w.seq_capacity = n;
  }
  const int64_t table = static_cast<int64_t>(batch.block_tables.size());
  if (table > w.table_capacity) {
    const int64_t n = std::max<int64_t>(table, 2 * w.table_capacity);
    ASSIGN_OR_RETURN(w.block_tables, alloc(n, 4));
    w.table_capacity = n;
  }
  return absl::OkStatus();
}

void Model::RunLayer(int64_t layer, const StepBatchView& view, KvCache& cache) {
  Backend& be = *backend_;
  Workspace& w = *workspace_;
  const LayerBuffers& b = layers_[layer];
  const int64_t T = view.num_tokens, H = config_.hidden_size, I = config_.intermediate_size;
  const int64_t d = config_.head_dim, nH = config_.num_attention_heads;
  const int64_t nKV = config_.num_key_value_heads;
  const int64_t group = config_.layer_group[layer];
  const bool stores_rotated = GroupStoresRotatedKeys(group);
  const RotaryView rotary{config_.rotary_dims, config_.max_position_embeddings,
                          F(rotary_table_)};
  float* x = F(w.hidden);
  float* a = F(w.normed);

  be.LayerNorm(x, F(b.input_ln_weight), F(b.input_ln_bias), config_.layer_norm_eps, T, H, a);
  be.Linear(a, T, H, F(b.query_weight), F(b.query_bias), nH * d, F(w.query));
  be.Rotary(F(w.query), T, nH, d, view.positions, rotary);
  if (config_.is_kv_layer(layer)) {
    be.Linear(a, T, H, F(b.key_weight), F(b.key_bias), nKV * d, F(w.key));
    be.Linear(a, T, H, F(b.value_weight), F(b.value_bias), nKV * d, F(w.value));
    if (stores_rotated) be.Rotary(F(w.key), T, nKV, d, view.positions, rotary);
    be.WriteKvCache(F(w.key), F(w.value), view, cache.group(group));
  }
  const bool reads_rotated =
      config_.is_kv_layer(layer) || config_.kv_sharing_rope == KvSharingRope::kRotated;
  AttentionParams params{nH, 1.0f / std::sqrt(static_cast<float>(d)),
                         /*rotate_keys_on_read=*/reads_rotated && !stores_rotated};
  be.PagedAttention(F(w.query), view, cache.group(group), rotary, params, F(w.attention));
  be.Linear(F(w.attention), T, H, F(b.dense_weight), F(b.dense_bias), H, F(w.projected));

  // Parallel residual: x + attn(ln1(x)) + mlp(ln2(x)); sequential: x += attn; x += mlp(ln2(x)).
  if (!config_.use_parallel_residual) be.Add(x, F(w.projected), T * H);
  be.LayerNorm(x, F(b.post_ln_weight), F(b.post_ln_bias), config_.layer_norm_eps, T, H, a);
  be.Linear(a, T, H, F(b.fc_in_weight), F(b.fc_in_bias), I, F(w.mlp));
  be.Gelu(F(w.mlp), T * I,
          config_.hidden_act == Activation::kGeluExact ? GeluKind::kExact : GeluKind::kTanh);
  be.Linear(F(w.mlp), T, I, F(b.fc_out_weight), F(b.fc_out_bias), H, a);
  if (config_.use_parallel_residual) be.Add(x, F(w.projected), T * H);
  be.Add(x, a, T * H);
}

absl::Status Model::Forward(const StepBatch& batch, KvCache& cache, std::vector<float>* logits) {
  RETURN_IF_ERROR(CheckBatch(batch, cache));
  RETURN_IF_ERROR(EnsureWorkspace(batch));
  Backend& be = *backend_;
  Workspace& w = *workspace_;
  CopyVector(be, *w.token_ids, batch.token_ids);
  CopyVector(be, *w.positions, batch.positions);
  CopyVector(be, *w.slot_mapping, batch.slot_mapping);
  CopyVector(be, *w.query_start, batch.query_start);
  CopyVector(be, *w.context_lens, batch.context_lens);
  CopyVector(be, *w.block_tables, batch.block_tables);
  CopyVector(be, *w.logits_rows, batch.logits_rows);
  const StepBatchView view{batch.num_tokens(),       w.positions->as<int32_t>(),
                           w.slot_mapping->as<int64_t>(), batch.num_seqs(),
                           w.query_start->as<int32_t>(),  w.context_lens->as<int32_t>(),
                           w.block_tables->as<int32_t>(), batch.max_blocks_per_seq};
  const int64_t H = config_.hidden_size, V = config_.vocab_size;
  be.Embedding(F(embed_in_), H, w.token_ids->as<int32_t>(), view.num_tokens, F(w.hidden));
  for (int64_t layer = 0; layer < config_.num_hidden_layers; ++layer) RunLayer(layer, view, cache);

  // Final layernorm and LM head only for the rows that need logits (one per decoding sequence).
  const int64_t rows = static_cast<int64_t>(batch.logits_rows.size());
  logits->resize(rows * V);
  if (rows == 0) return absl::OkStatus();
  be.GatherRows(F(w.hidden), H, w.logits_rows->as<int32_t>(), rows, F(w.logits_hidden));
  be.LayerNorm(F(w.logits_hidden), F(final_ln_weight_), F(final_ln_bias_), config_.layer_norm_eps,
               rows, H, F(w.normed));
  const float* head = embed_out_ ? F(embed_out_) : F(embed_in_);
  be.Linear(F(w.normed), rows, H, head, nullptr, V, F(w.logits));
  be.CopyToHost(logits->data(), F(w.logits), logits->size() * sizeof(float));
  return absl::OkStatus();
}

}  // namespace mlkv
