// The offline runner's step loop; see offline_runner.h.
#include "engine/offline_runner.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/log_softmax.h"
#include "engine/sampler.h"

namespace mlkv {
namespace {

struct SequenceState {
  SequenceState(const SequenceRequest* r, uint64_t default_seed)
      : request(r), sampler(r->sampling, default_seed), tokens(r->prompt) {}

  const SequenceRequest* request;
  SequenceSampler sampler;
  std::vector<int32_t> tokens;  // prompt, then output
  int64_t num_computed_tokens = 0;
  std::vector<int32_t> blocks;
  bool finished = false;
  SequenceResult result;
};

int64_t BlocksFor(int64_t tokens, int64_t block_size) {
  return (tokens + block_size - 1) / block_size;
}

absl::Status RequestError(size_t index, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("request ", index, ": ", what));
}

absl::Status ValidateRequest(const SequenceRequest& r, size_t index, const ModelConfig& config) {
  if (r.prompt.empty()) return RequestError(index, "the prompt is empty");
  for (int32_t token : r.prompt) {
    if (token < 0 || token >= config.vocab_size) {
      return RequestError(index, absl::StrCat("token id ", token, " is outside the vocabulary [0, ",
                                              config.vocab_size, ")"));
    }
  }
  if (r.max_tokens < 0) return RequestError(index, "max_tokens must not be negative");
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  if (total > config.max_position_embeddings) {
    return RequestError(index, absl::StrCat("prompt (", r.prompt.size(), " tokens) + max_tokens (",
                                            r.max_tokens, ") exceeds max_position_embeddings (",
                                            config.max_position_embeddings, ")"));
  }
  absl::Status sampling = r.sampling.Validate();
  if (!sampling.ok()) return RequestError(index, std::string(sampling.message()));
  return absl::OkStatus();
}

}  // namespace

// Block size and KV dtype are checked by KvCache::Create.
absl::Status OfflineRunnerOptions::Validate() const {
  if (prefill_chunk < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill chunk must not be negative, got ", prefill_chunk));
  }
  return absl::OkStatus();
}

OfflineRunner::OfflineRunner(Model* model, const OfflineRunnerOptions& options)
    : model_(model), options_(options) {}

absl::StatusOr<std::vector<SequenceResult>> OfflineRunner::Run(
    const std::vector<SequenceRequest>& requests) {
  RETURN_IF_ERROR(options_.Validate());
  const ModelConfig& config = model_->config();
  if (requests.empty()) return absl::InvalidArgumentError("no requests to run");
  const int64_t bs = options_.block_size;
  if (bs <= 0) return absl::InvalidArgumentError(absl::StrCat("block size must be positive, got ", bs));
  int64_t num_blocks = 0, max_blocks_per_seq = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    RETURN_IF_ERROR(ValidateRequest(requests[i], i, config));
    const int64_t blocks = BlocksFor(requests[i].prompt.size() + requests[i].max_tokens, bs);
    num_blocks += blocks;
    max_blocks_per_seq = std::max(max_blocks_per_seq, blocks);
  }
  ASSIGN_OR_RETURN(auto cache, KvCache::Create(config, {bs, num_blocks, options_.kv_dtype},
                                               &model_->backend()));
  std::vector<int32_t> free_blocks(num_blocks);
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  if (options_.shuffle_blocks_seed) {
    std::mt19937_64 rng(*options_.shuffle_blocks_seed);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  }

  std::vector<SequenceState> seqs;
  seqs.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    seqs.emplace_back(&requests[i], options_.default_seed + i);
  }

  std::vector<float> logits;
  while (true) {
    StepBatch batch;
    batch.max_blocks_per_seq = max_blocks_per_seq;
    batch.query_start.push_back(0);
    std::vector<SequenceState*> scheduled;
    for (SequenceState& s : seqs) {
      if (s.finished) continue;
      int64_t n = static_cast<int64_t>(s.tokens.size()) - s.num_computed_tokens;
      if (options_.prefill_chunk > 0) n = std::min(n, options_.prefill_chunk);
      const int64_t context = s.num_computed_tokens + n;
      while (static_cast<int64_t>(s.blocks.size()) < BlocksFor(context, bs)) {
        s.blocks.push_back(free_blocks.back());
        free_blocks.pop_back();
      }
      const bool wants_all_rows = s.request->want_prompt_logprobs;
      for (int64_t p = s.num_computed_tokens; p < context; ++p) {
        if (wants_all_rows || p + 1 == static_cast<int64_t>(s.tokens.size())) {
          batch.logits_rows.push_back(static_cast<int32_t>(batch.token_ids.size()));
        }
        batch.token_ids.push_back(s.tokens[p]);
        batch.positions.push_back(static_cast<int32_t>(p));
        batch.slot_mapping.push_back(static_cast<int64_t>(s.blocks[p / bs]) * bs + p % bs);
      }
      batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
      batch.context_lens.push_back(static_cast<int32_t>(context));
      std::vector<int32_t> table(max_blocks_per_seq, 0);
      std::copy(s.blocks.begin(), s.blocks.end(), table.begin());
      batch.block_tables.insert(batch.block_tables.end(), table.begin(), table.end());
      scheduled.push_back(&s);
    }
    if (scheduled.empty()) break;
    RETURN_IF_ERROR(model_->Forward(batch, *cache, &logits));

    // Hand each sequence its logits rows, in the order they were requested.
    const int64_t V = config.vocab_size;
    size_t next_row = 0;
    for (size_t i = 0; i < scheduled.size(); ++i) {
      SequenceState& s = *scheduled[i];
      const int64_t begin = batch.query_start[i], end = batch.query_start[i + 1];
      const int64_t prompt_len = static_cast<int64_t>(s.request->prompt.size());
      for (int64_t row = begin; row < end; ++row) {
        if (next_row >= batch.logits_rows.size() || batch.logits_rows[next_row] != row) continue;
        std::span<float> row_logits(logits.data() + next_row * V, V);
        ++next_row;
        const int64_t position = batch.positions[row];
        if (position + 1 < prompt_len) {  // predicts a prompt token: score it
          const std::vector<float> lp = LogSoftmax(row_logits);
          s.result.prompt_logprobs.push_back(lp[s.tokens[position + 1]]);
          continue;
        }
        if (s.request->max_tokens == 0) continue;  // scoring only: nothing to generate
        const std::vector<float> lp = LogSoftmax(row_logits);
        const int32_t token = s.sampler.Sample(
            row_logits, s.request->prompt, std::span<const int32_t>(s.result.output_tokens));
        s.result.output_tokens.push_back(token);
        s.result.output_logprobs.push_back(lp[token]);
        s.tokens.push_back(token);
      }
      s.num_computed_tokens = batch.context_lens[i];
      const bool prompt_done = s.num_computed_tokens >= prompt_len;
      const int64_t generated = static_cast<int64_t>(s.result.output_tokens.size());
      const bool hit_eos = generated > 0 && !s.request->ignore_eos &&
                           s.result.output_tokens.back() == config.eos_token_id;
      if (prompt_done && (generated >= s.request->max_tokens || hit_eos)) s.finished = true;
    }
  }
  std::vector<SequenceResult> results;
  for (SequenceState& s : seqs) results.push_back(std::move(s.result));
  return results;
}

}  // namespace mlkv
