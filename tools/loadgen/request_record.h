// What the load generator observed of one request: when it started, when each streamed chunk
// of tokens arrived, how it ended. The latency metrics are derived from these times alone.
#ifndef MLKV_TOOLS_LOADGEN_REQUEST_RECORD_H_
#define MLKV_TOOLS_LOADGEN_REQUEST_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mlkv::loadgen {

// Times are seconds since the start of the sweep point (steady clock).
struct RequestRecord {
  struct Chunk {
    double time_s = 0;
    int64_t tokens = 0;  // >= 1; several when the server merged deltas
  };

  int64_t index = 0;          // order of sending within the point
  std::string request_id;     // the server's id, from the result (empty when none came)
  int64_t prompt_tokens = 0;  // the server's count when it sent usage, else the ids sent
  int64_t cached_prompt_tokens = 0;
  int64_t expected_output_tokens = 0;  // max_tokens sent
  double start_s = 0;
  double end_s = 0;
  std::vector<Chunk> chunks;
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string error;  // the status message when code is not OK

  bool ok() const { return code == absl::StatusCode::kOk; }
  int64_t output_tokens() const;
  // Time to first token and end-to-end latency, in seconds.
  std::optional<double> ttft_s() const;
  double e2e_s() const { return end_s - start_s; }
  // Time per output token after the first: (last token - first token) / (tokens - 1); unset with
  // fewer than two tokens.
  std::optional<double> tpot_s() const;
  // Inter-token latencies, one per token after the first: a chunk of k tokens that arrives g
  // after the previous chunk contributes k gaps of g/k, so that their mean is the TPOT whether
  // or not the server merged deltas.
  std::vector<double> itl_s() const;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_REQUEST_RECORD_H_
