// One model step's input in host memory, as the runner builds it: the new tokens of every
// scheduled sequence back to back, their cache slots, the block tables, and which rows need
// logits or a token taken on the backend. The model uploads it to its backend and hands the
// kernels a StepBatchView.
#ifndef MLKV_ENGINE_STEP_BATCH_H_
#define MLKV_ENGINE_STEP_BATCH_H_

#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace mlkv {

struct StepBatch {
  std::vector<int32_t> token_ids;     // [T]
  std::vector<int32_t> positions;     // [T]
  std::vector<int64_t> slot_mapping;  // [T]
  std::vector<int32_t> query_start;   // [S + 1]
  std::vector<int32_t> context_lens;  // [S]
  std::vector<int32_t> block_tables;  // [S][max_blocks_per_seq], unused entries 0
  int64_t max_blocks_per_seq = 0;
  std::vector<int32_t> logits_rows;  // rows whose next-token logits are wanted, in output order
  // Rows whose greedy token alone is wanted, in output order; disjoint from logits_rows. Their
  // argmax is taken on the backend, so that a decoding sequence sampled greedily sends 4 bytes to
  // the host instead of a vocabulary of logits.
  std::vector<int32_t> argmax_rows;
  // Rows whose token is drawn on the backend (Backend::SampleRows) with sample_params[i] for
  // sample_rows[i], in output order; disjoint from the two above. A sampled decoding sequence
  // then also sends only its token to the host.
  std::vector<int32_t> sample_rows;
  std::vector<RowSampling> sample_params;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_lens.size()); }
};

// What one step hands back to the host.
struct StepOutput {
  std::vector<float> logits;  // [logits_rows.size()][vocab_size]
  // [argmax_rows.size() + sample_rows.size()]: the tokens taken on the backend, the index of each
  // argmax row's largest logit, then the token drawn from each sample row.
  std::vector<int32_t> tokens;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_STEP_BATCH_H_
