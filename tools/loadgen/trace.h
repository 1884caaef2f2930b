// A workload trace in JSON Lines: one request a line, replayed in order, so that a load test can
// reproduce recorded traffic (prompt text or prompt length, and output length).
#ifndef MLKV_TOOLS_LOADGEN_TRACE_H_
#define MLKV_TOOLS_LOADGEN_TRACE_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mlkv::loadgen {

// A line holds exactly one of "prompt" (text, sent as prompt_text) and "prompt_len" (>= 1: that
// many token ids are drawn as for --input-len), and "output_len" (>= 1). Other keys are ignored
// (recorded traces carry timestamps and ids). Blank lines are skipped.
struct TraceEntry {
  std::optional<std::string> prompt;
  int64_t prompt_len = 0;  // when prompt is unset
  int64_t output_len = 1;
};

// Errors name the source and the 1-based line number: "trace.jsonl:7: output_len: ...".
absl::StatusOr<std::vector<TraceEntry>> ParseTrace(std::istream& in, const std::string& source);
absl::StatusOr<std::vector<TraceEntry>> ReadTraceFile(const std::string& path);

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_TRACE_H_
