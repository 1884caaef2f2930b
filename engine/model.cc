// The forward pass; see model.h and model.md.
#include "engine/model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "common/status_macros.h"
#include "engine/decode_graph_batch.h"
#include "engine/model_decode_graph.h"
#include "engine/model_workspace_buffers.h"

namespace mlkv {

struct Model::LayerBuffers {
  std::unique_ptr<DeviceBuffer> input_ln_weight, input_ln_bias, post_ln_weight, post_ln_bias;
  std::unique_ptr<DeviceBuffer> query_weight, query_bias;
  std::unique_ptr<DeviceBuffer> key_weight, key_bias, value_weight, value_bias;  // KV layers only
  std::unique_ptr<DeviceBuffer> dense_weight, dense_bias;
  std::unique_ptr<DeviceBuffer> fc_in_weight, fc_in_bias, fc_out_weight, fc_out_bias;
};

namespace {

template <typename T>
absl::StatusOr<std::unique_ptr<DeviceBuffer>> Upload(Backend* backend, const std::vector<T>& host) {
  ASSIGN_OR_RETURN(auto buffer, backend->Allocate(host.size() * sizeof(T)));
  backend->CopyToDevice(buffer->data(), host.data(), host.size() * sizeof(T));
  return buffer;
}

// A weight matrix or embedding table, stored as `dtype` (rounded to nearest even when narrower).
absl::StatusOr<std::unique_ptr<DeviceBuffer>> UploadWeight(Backend* backend,
                                                           const std::vector<float>& host,
                                                           DType dtype) {
  if (dtype == DType::kF32) return Upload(backend, host);
  std::vector<uint16_t> narrow(host.size());
  const auto round = dtype == DType::kF16 ? FloatToF16 : FloatToBf16;
  for (size_t i = 0; i < host.size(); ++i) narrow[i] = round(host[i]);
  return Upload(backend, narrow);
}

template <typename T>
void CopyVector(Backend& backend, T* dst, const std::vector<T>& src) {
  backend.CopyToDevice(dst, src.data(), src.size() * sizeof(T));
}

// [positions][r/2][2] of (cos, sin) of p * base^(-2i/r), computed in double.
std::vector<float> RotaryTable(const ModelConfig& c) {
  const int64_t r = c.rotary_dims;
  std::vector<float> table(c.max_position_embeddings * r);
  for (int64_t p = 0; p < c.max_position_embeddings; ++p) {
    for (int64_t i = 0; i < r / 2; ++i) {
      const double angle =
          static_cast<double>(p) * std::pow(c.rotary_emb_base, -2.0 * static_cast<double>(i) / r);
      table[p * r + 2 * i] = static_cast<float>(std::cos(angle));
      table[p * r + 2 * i + 1] = static_cast<float>(std::sin(angle));
    }
  }
  return table;
}

float* F(const std::unique_ptr<DeviceBuffer>& b) { return b ? b->as<float>() : nullptr; }

}  // namespace

Model::Model(const ModelConfig& config, Backend* backend, DType weight_dtype)
    : config_(config),
      backend_(backend),
      weight_dtype_(weight_dtype),
      workspace_(std::make_unique<Workspace>()) {}

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const ModelConfig& config,
                                                     const ModelHostWeights& weights,
                                                     Backend* backend, DType weight_dtype) {
  std::unique_ptr<Model> model(new Model(config, backend, weight_dtype));
  const auto upload_weight = [&](const std::vector<float>& host) {
    return UploadWeight(backend, host, weight_dtype);
  };
  ASSIGN_OR_RETURN(model->embed_in_, upload_weight(weights.embed_in));
  if (!weights.embed_out.empty()) {
    ASSIGN_OR_RETURN(model->embed_out_, upload_weight(weights.embed_out));
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
    ASSIGN_OR_RETURN(b.query_weight, upload_weight(w.query_weight));
    ASSIGN_OR_RETURN(b.query_bias, Upload(backend, w.query_bias));
    if (!w.key_weight.empty()) {
      ASSIGN_OR_RETURN(b.key_weight, upload_weight(w.key_weight));
      ASSIGN_OR_RETURN(b.key_bias, Upload(backend, w.key_bias));
      ASSIGN_OR_RETURN(b.value_weight, upload_weight(w.value_weight));
      ASSIGN_OR_RETURN(b.value_bias, Upload(backend, w.value_bias));
    }
    ASSIGN_OR_RETURN(b.dense_weight, upload_weight(w.dense_weight));
    ASSIGN_OR_RETURN(b.dense_bias, Upload(backend, w.dense_bias));
    ASSIGN_OR_RETURN(b.fc_in_weight, upload_weight(w.dense_h_to_4h_weight));
    ASSIGN_OR_RETURN(b.fc_in_bias, Upload(backend, w.dense_h_to_4h_bias));
    ASSIGN_OR_RETURN(b.fc_out_weight, upload_weight(w.dense_4h_to_h_weight));
    ASSIGN_OR_RETURN(b.fc_out_bias, Upload(backend, w.dense_4h_to_h_bias));
    model->layers_.push_back(std::move(b));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& model_dir, Backend* backend,
                                                   DType weight_dtype) {
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(model_dir + "/config.json"));
  ASSIGN_OR_RETURN(ModelHostWeights weights, LoadModelWeights(config, model_dir));
  return Create(config, weights, backend, weight_dtype);
}

// A group whose layers all read rotated keys stores them rotated. Only in `unrotated` sharing
// mode with more than one layer in the group do the other layers read unrotated keys: then the
// group stores them unrotated and its KV layer rotates them as it reads (model.md: one stored
// copy of K, the other form derived at read time).
WeightView Model::Weight(const std::unique_ptr<DeviceBuffer>& buffer) const {
  return WeightView(buffer->data(), weight_dtype_);
}

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
      return absl::InvalidArgumentError(
          absl::StrCat("KV slot ", batch.slot_mapping[t], " is outside the cache"));
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
        return absl::InvalidArgumentError(
            absl::StrCat("block id ", block, " is outside the cache"));
      }
    }
  }
  // The workspace holds at most one output row per token (model_workspace.h).
  const size_t output_rows =
      batch.logits_rows.size() + batch.argmax_rows.size() + batch.sample_rows.size();
  if (static_cast<int64_t>(output_rows) > T) {
    return absl::InvalidArgumentError(absl::StrCat(batch.logits_rows.size(), " logits rows, ",
                                                   batch.argmax_rows.size(), " argmax rows and ",
                                                   batch.sample_rows.size(), " sample rows for ", T,
                                                   " tokens: at most one output row per "
                                                   "token"));
  }
  for (const auto* rows : {&batch.logits_rows, &batch.argmax_rows, &batch.sample_rows}) {
    for (int32_t row : *rows) {
      if (row < 0 || row >= T) return absl::InvalidArgumentError("output row outside the batch");
    }
  }
  if (batch.sample_params.size() != batch.sample_rows.size()) {
    return absl::InvalidArgumentError("sample_params and sample_rows differ in length");
  }
  for (const RowSampling& p : batch.sample_params) {
    // Written so that NaN fails each test.
    if (!(p.temperature >= 0.0f && std::isfinite(p.temperature)) || p.top_k < 0 ||
        !(p.top_p > 0.0f && p.top_p <= 1.0f) || !(p.min_p >= 0.0f && p.min_p < 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sample row parameters out of range: temperature ", p.temperature,
                       ", top_k ", p.top_k, ", top_p ", p.top_p, ", min_p ", p.min_p));
    }
  }
  return absl::OkStatus();
}

absl::Status Model::ReserveWorkspace(const WorkspaceLimits& limits) {
  ASSIGN_OR_RETURN(const int64_t total, WorkspaceBytes(config_, limits));
  const absl::Status grown = GrowWorkspace(limits);
  if (grown.ok()) {
    reserved_ = limits;
    return grown;
  }
  return absl::Status(
      grown.code(),
      absl::StrCat("activation workspace of ", total, " bytes (steps of up to ",
                   limits.max_num_tokens, " tokens, ", limits.max_num_seqs, " sequences, ",
                   limits.max_blocks_per_seq, " blocks per sequence): ", grown.message()));
}

absl::Status Model::GrowWorkspace(const WorkspaceLimits& limits) {
  ASSIGN_OR_RETURN(const auto bytes, WorkspaceBufferBytes(config_, limits));
  for (size_t i = 0; i < kNumWorkspaceBuffers; ++i) {
    std::unique_ptr<DeviceBuffer>& buffer = workspace_->buffers[i];
    if (buffer != nullptr && static_cast<int64_t>(buffer->bytes()) >= bytes[i]) continue;
    // Freed before the larger one is allocated, so that growing never holds both; after a
    // failed allocation the buffer stays null and the next step tries again. Captured decode
    // graphs point at the old one: they go too.
    if (graphs_ != nullptr) graphs_->graphs.clear();
    buffer.reset();
    ASSIGN_OR_RETURN(buffer, backend_->Allocate(static_cast<size_t>(bytes[i])));
  }
  return absl::OkStatus();
}

void Model::RunLayer(int64_t layer, const StepBatchView& view, KvCache& cache) {
  Backend& be = *backend_;
  const Workspace& w = *workspace_;
  const LayerBuffers& b = layers_[layer];
  using enum WorkspaceBuffer;
  using enum LinearEpilogue;
  const int64_t T = view.num_tokens, H = config_.hidden_size, I = config_.intermediate_size;
  const int64_t d = config_.head_dim, nH = config_.num_attention_heads;
  const int64_t nKV = config_.num_key_value_heads;
  const int64_t group = config_.layer_group[layer];
  const bool stores_rotated = GroupStoresRotatedKeys(group);
  const RotaryView rotary{config_.rotary_dims, config_.max_position_embeddings, F(rotary_table_)};
  float* x = w.get(kHidden);
  float* a = w.get(kNormed);

  be.LayerNorm(x, F(b.input_ln_weight), F(b.input_ln_bias), config_.layer_norm_eps, T, H, a);
  be.Linear(a, T, H, Weight(b.query_weight), F(b.query_bias), nH * d, kStore, w.get(kQuery));
  be.Rotary(w.get(kQuery), T, nH, d, view.positions, rotary);
  if (config_.is_kv_layer(layer)) {
    be.Linear(a, T, H, Weight(b.key_weight), F(b.key_bias), nKV * d, kStore, w.get(kKey));
    be.Linear(a, T, H, Weight(b.value_weight), F(b.value_bias), nKV * d, kStore, w.get(kValue));
    if (stores_rotated) be.Rotary(w.get(kKey), T, nKV, d, view.positions, rotary);
    be.WriteKvCache(w.get(kKey), w.get(kValue), view, cache.group(group));
  }
  const bool reads_rotated =
      config_.is_kv_layer(layer) || config_.kv_sharing_rope == KvSharingRope::kRotated;
  AttentionParams params{nH, 1.0f / std::sqrt(static_cast<float>(d)),
                         /*rotate_keys_on_read=*/reads_rotated && !stores_rotated};
  be.PagedAttention(w.get(kQuery), view, cache.group(group), rotary, params, w.get(kAttention));

  // Parallel residual: x + attn(ln1(x)) + mlp(ln2(x)); sequential: x += attn; x += mlp(ln2(x)).
  // The output projections add onto x themselves (kAccumulate), so the parallel form takes
  // ln2(x) before the attention's projection changes x.
  const auto add_attention = [&] {
    be.Linear(w.get(kAttention), T, H, Weight(b.dense_weight), F(b.dense_bias), H, kAccumulate, x);
  };
  if (!config_.use_parallel_residual) add_attention();
  be.LayerNorm(x, F(b.post_ln_weight), F(b.post_ln_bias), config_.layer_norm_eps, T, H, a);
  if (config_.use_parallel_residual) add_attention();
  const LinearEpilogue gelu = config_.hidden_act == Activation::kGeluExact ? kGeluExact : kGeluTanh;
  be.Linear(a, T, H, Weight(b.fc_in_weight), F(b.fc_in_bias), I, gelu, w.get(kMlp));
  be.Linear(w.get(kMlp), T, I, Weight(b.fc_out_weight), F(b.fc_out_bias), H, kAccumulate, x);
}

absl::Status Model::Forward(const StepBatch& batch, KvCache& cache, StepOutput* output) {
  RETURN_IF_ERROR(CheckBatch(batch, cache));
  RETURN_IF_ERROR(GrowWorkspace({batch.num_tokens(), batch.num_seqs(), batch.max_blocks_per_seq}));
  if (graphs_ != nullptr && IsDecodeStep(batch) &&
      batch.max_blocks_per_seq <= graphs_->table_width) {
    if (const std::optional<int64_t> bucket = BucketFor(graphs_->buckets, batch.num_seqs())) {
      return ForwardDecodeGraph(batch, *bucket, cache, output);
    }
  }
  UploadBatch(batch);
  RunOps(batch, cache);
  const int64_t backend_tokens =
      static_cast<int64_t>(batch.argmax_rows.size() + batch.sample_rows.size());
  output->logits.resize(batch.logits_rows.size() * config_.vocab_size);
  output->tokens.resize(backend_tokens);
  const Workspace& w = *workspace_;
  using enum WorkspaceBuffer;
  backend_->CopyToHost(output->tokens.data(), w.get<int32_t>(kOutputTokens),
                       backend_tokens * sizeof(int32_t));
  backend_->CopyToHost(output->logits.data(), w.get(kLogits),
                       output->logits.size() * sizeof(float));
  return absl::OkStatus();
}

void Model::UploadBatch(const StepBatch& batch) {
  Backend& be = *backend_;
  const Workspace& w = *workspace_;
  using enum WorkspaceBuffer;
  CopyVector(be, w.get<int32_t>(kTokenIds), batch.token_ids);
  CopyVector(be, w.get<int32_t>(kPositions), batch.positions);
  CopyVector(be, w.get<int64_t>(kSlotMapping), batch.slot_mapping);
  CopyVector(be, w.get<int32_t>(kQueryStart), batch.query_start);
  CopyVector(be, w.get<int32_t>(kContextLens), batch.context_lens);
  CopyVector(be, w.get<int32_t>(kBlockTables), batch.block_tables);
  int32_t* output_rows = w.get<int32_t>(kLogitsRows);
  CopyVector(be, output_rows, batch.logits_rows);
  CopyVector(be, output_rows + batch.logits_rows.size(), batch.argmax_rows);
  CopyVector(be, output_rows + batch.logits_rows.size() + batch.argmax_rows.size(),
             batch.sample_rows);
  CopyVector(be, w.get<RowSampling>(kSampleParams), batch.sample_params);
}

void Model::RunOps(const StepBatch& batch, KvCache& cache) {
  Backend& be = *backend_;
  const Workspace& w = *workspace_;
  using enum WorkspaceBuffer;
  const StepBatchView view{batch.num_tokens(),           w.get<int32_t>(kPositions),
                           w.get<int64_t>(kSlotMapping), batch.num_seqs(),
                           w.get<int32_t>(kQueryStart),  w.get<int32_t>(kContextLens),
                           w.get<int32_t>(kBlockTables), batch.max_blocks_per_seq};
  const int64_t H = config_.hidden_size, V = config_.vocab_size;
  be.Embedding(Weight(embed_in_), H, w.get<int32_t>(kTokenIds), view.num_tokens, w.get(kHidden));
  for (int64_t layer = 0; layer < config_.num_hidden_layers; ++layer) RunLayer(layer, view, cache);

  // Final layernorm and LM head only for the output rows (one per decoding sequence): the logits
  // rows first, then the argmax rows and the sample rows, whose logits stay on the backend and
  // whose tokens come back together.
  const int64_t full = static_cast<int64_t>(batch.logits_rows.size());
  const int64_t greedy = static_cast<int64_t>(batch.argmax_rows.size());
  const int64_t drawn = static_cast<int64_t>(batch.sample_rows.size());
  const int64_t rows = full + greedy + drawn;
  if (rows == 0) return;
  be.GatherRows(w.get(kHidden), H, w.get<int32_t>(kLogitsRows), rows, w.get(kLogitsHidden));
  be.LayerNorm(w.get(kLogitsHidden), F(final_ln_weight_), F(final_ln_bias_), config_.layer_norm_eps,
               rows, H, w.get(kNormed));
  const WeightView head = Weight(embed_out_ ? embed_out_ : embed_in_);
  be.Linear(w.get(kNormed), rows, H, head, nullptr, V, LinearEpilogue::kStore, w.get(kLogits));
  int32_t* tokens = w.get<int32_t>(kOutputTokens);
  if (greedy > 0) be.ArgmaxRows(w.get(kLogits) + full * V, greedy, V, tokens);
  if (drawn > 0) {
    be.SampleRows(w.get(kLogits) + (full + greedy) * V, drawn, V, w.get<RowSampling>(kSampleParams),
                  tokens + greedy);
  }
}

}  // namespace mlkv
