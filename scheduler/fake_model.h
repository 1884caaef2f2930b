// A stand-in for the model runner in scheduler tests: a fake paged KV cache whose slots record the
// token and position written there, and a next token that hashes the tokens read back through
// the block table. Wrong block tables, slot mappings or shared blocks change what it generates.
#ifndef MLKV_SCHEDULER_FAKE_MODEL_H_
#define MLKV_SCHEDULER_FAKE_MODEL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "scheduler/request.h"
#include "scheduler/scheduler_output.h"

namespace mlkv {

class FakeModel {
 public:
  FakeModel(int32_t num_blocks, int32_t block_size, int32_t vocab_size);

  // Runs one step as the real runner would: writes every scheduled token into slot
  // block_table[p / block_size] * block_size + p % block_size, then, for each request with
  // needs_sample, reads positions [0, context) back through its block table and returns
  // NextToken() of them. The result is aligned with output.scheduled (0 where nothing is
  // sampled). Internal error when a slot is out of range or holds another position than the one
  // read (a block that was reused or shared wrongly).
  absl::StatusOr<std::vector<int32_t>> Step(const SchedulerOutput& output);

  // The deterministic "model": a hash of the whole token history, in [0, vocab_size).
  int32_t NextToken(absl::Span<const int32_t> history) const;

  // What a request with this prompt and these params generates running alone, stop rules
  // applied (EOS unless ignore_eos, stop ids, then max_tokens).
  std::vector<int32_t> GenerateAlone(absl::Span<const int32_t> prompt,
                                     const RequestParams& params) const;

 private:
  struct Slot {
    int32_t token = -1;
    int32_t position = -1;
  };

  int32_t block_size_;
  int32_t vocab_size_;
  std::vector<Slot> slots_;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_FAKE_MODEL_H_
