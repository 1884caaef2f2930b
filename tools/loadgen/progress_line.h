// The live progress line on stderr: rewritten in place on a terminal, a plain line every few
// seconds otherwise (logs, CI), and never more often than that whatever the request rate.
#ifndef MLKV_TOOLS_LOADGEN_PROGRESS_LINE_H_
#define MLKV_TOOLS_LOADGEN_PROGRESS_LINE_H_

#include <cstdint>
#include <optional>
#include <string>

namespace mlkv::loadgen {

struct Progress {
  double elapsed_s = 0;
  int64_t completed = 0, failed = 0, in_flight = 0, output_tokens = 0;
  std::optional<int64_t> total;  // requests the phase will send, when bounded by a count
};

// Not thread-safe: the dispatcher alone updates it.
class ProgressLine {
 public:
  // `label` says which phase and point, e.g. "concurrency 64". Disabled: prints nothing.
  ProgressLine(bool enabled, std::string label);

  // Prints when the last line is old enough.
  void Update(const Progress& p);
  // Prints the final state and ends the line.
  void Finish(const Progress& p);

 private:
  void Print(const Progress& p);

  const bool enabled_;
  const bool tty_;
  const std::string label_;
  double last_print_s_ = 0;  // the first line comes one interval in
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_PROGRESS_LINE_H_
