// Decode steps as padded, captured graphs; see Model::EnableDecodeGraphs in model.h and
// decode_graph_batch.h.
#include "engine/model_decode_graph.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/decode_graph_batch.h"
#include "engine/model_workspace_buffers.h"
#include "spdlog/spdlog.h"

namespace mlkv {

absl::Status Model::EnableDecodeGraphs() {
  if (reserved_.max_num_seqs <= 0) {
    return absl::FailedPreconditionError(
        "decode graphs need the workspace reserved first (Model::ReserveWorkspace)");
  }
  graphs_ = std::make_unique<DecodeGraphs>();
  // A padded step has one token per sequence: the reserve must hold that many tokens too.
  graphs_->buckets = DecodeGraphBuckets(std::min(reserved_.max_num_seqs, reserved_.max_num_tokens));
  graphs_->table_width = reserved_.max_blocks_per_seq;
  return absl::OkStatus();
}

int64_t Model::num_decode_graphs() const {
  return graphs_ == nullptr ? 0 : static_cast<int64_t>(graphs_->graphs.size());
}

absl::Status Model::ForwardDecodeGraph(const StepBatch& batch, int64_t bucket, KvCache& cache,
                                       StepOutput* output) {
  DecodeGraphs& g = *graphs_;
  if (g.cache != &cache) {
    g.graphs.clear();
    g.cache = &cache;
  }
  PadDecodeBatch(batch, bucket, g.table_width, &g.padded);
  UploadBatch(g.padded);
  Backend& be = *backend_;
  if (const auto graph = g.graphs.find(bucket); graph != g.graphs.end()) {
    be.Replay(*graph->second);
  } else {
    // Eagerly first: this step's tokens, and on a GPU any scratch the ops need is allocated now,
    // since nothing may be allocated while a graph is being recorded.
    RunOps(g.padded, cache);
    if (g.capture) {
      absl::Status status = be.BeginCapture();
      if (status.ok()) {
        RunOps(g.padded, cache);  // recorded, not run
        absl::StatusOr<std::unique_ptr<BackendGraph>> captured = be.EndCapture();
        if (captured.ok()) {
          g.graphs.emplace(bucket, *std::move(captured));
          spdlog::info("decode graph captured for batches of up to {} sequences ({} so far)",
                       bucket, g.graphs.size());
        } else {
          status = captured.status();
        }
      }
      if (!status.ok()) {
        g.capture = false;
        if (!absl::IsUnimplemented(status)) {
          spdlog::warn("decode graphs off, steps run eagerly: {}", status.ToString());
        }
      }
    }
  }
  // Only the real rows' tokens; each goes to its argmax or sample row in output order.
  g.tokens.resize(batch.num_seqs());
  be.CopyToHost(g.tokens.data(), workspace_->get<int32_t>(WorkspaceBuffer::kOutputTokens),
                g.tokens.size() * sizeof(int32_t));
  output->logits.clear();
  output->tokens.clear();
  for (int32_t row : batch.argmax_rows) output->tokens.push_back(g.tokens[row]);
  for (int32_t row : batch.sample_rows) output->tokens.push_back(g.tokens[row]);
  return absl::OkStatus();
}

}  // namespace mlkv
