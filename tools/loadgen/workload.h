// The stream of requests a load test sends: prompts of token ids drawn from a seeded RNG (or text
// from a trace), with output lengths, optionally sharing a few common prefixes so that the
// server's prefix cache has something to find.
#ifndef MLKV_TOOLS_LOADGEN_WORKLOAD_H_
#define MLKV_TOOLS_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/loadgen/length_distribution.h"
#include "tools/loadgen/trace.h"

namespace mlkv::loadgen {

// One request to send. Exactly one of prompt_token_ids and prompt_text is non-empty.
struct RequestSpec {
  std::vector<int32_t> prompt_token_ids;
  std::string prompt_text;
  int64_t output_len = 1;  // max_tokens; exact with ignore_eos
};

struct WorkloadOptions {
  LengthDistribution input_len;   // ignored with a trace
  LengthDistribution output_len;  // ignored with a trace
  std::vector<TraceEntry> trace;  // non-empty: replayed in order, from the top again at the end
  // Prompts start with one of shared_prefix_count prefixes of shared_prefix_len tokens (taken in
  // turn), followed by input_len (or the trace's prompt_len) tokens of their own. 0: no prefix.
  int64_t shared_prefix_count = 0;
  int64_t shared_prefix_len = 0;
  int64_t vocab_size = 0;  // token ids are drawn uniformly from [0, vocab_size)
  uint64_t seed = 0;
};

// The same options and seed give the same requests in the same order, so that every point of a
// sweep sends the same workload. Not thread-safe: one dispatcher draws the requests.
class Workload {
 public:
  // Refuses a vocabulary below 1 and a shared prefix with a text trace (the prefix is tokens).
  static absl::StatusOr<Workload> Create(WorkloadOptions options);

  RequestSpec Next();

 private:
  explicit Workload(WorkloadOptions options);
  void AppendRandomTokens(int64_t n, std::vector<int32_t>* out);

  WorkloadOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::vector<int32_t>> prefixes_;
  int64_t next_ = 0;  // requests drawn so far
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_WORKLOAD_H_
