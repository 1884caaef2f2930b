// mlkv-loadgen's command line: every flag checked, impossible combinations refused with a
// message naming the flags, before anything is sent.
#ifndef MLKV_TOOLS_LOADGEN_LOADGEN_OPTIONS_H_
#define MLKV_TOOLS_LOADGEN_LOADGEN_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/loadgen/length_distribution.h"
#include "tools/loadgen/summary.h"

namespace mlkv::loadgen {

extern const char kLoadgenUsage[];

enum class Api { kNative, kKserve };

// One point of a sweep: a closed loop keeps `concurrency` requests in flight; an open loop sends
// `request_rate` requests per second (+inf: all at once) whatever the server does.
struct LoadPoint {
  enum class Mode { kClosedLoop, kOpenLoop };
  Mode mode = Mode::kClosedLoop;
  int64_t concurrency = 0;  // closed loop
  double request_rate = 0;  // open loop
};

struct LoadgenOptions {
  bool help = false;
  std::string target;  // HOST:PORT
  Api api = Api::kNative;
  std::string model_name;  // KServe: the model to call; empty: the server's (from GetModelInfo)
  std::vector<LoadPoint> points;
  double burstiness = 1;  // gamma shape of open-loop arrivals; 1 is Poisson
  // At least one bound; with both, a point ends at whichever comes first.
  std::optional<int64_t> num_requests;
  std::optional<double> duration_s;
  int64_t warmup_requests = 0;
  LengthDistribution input_len, output_len;
  std::string trace_path;
  int64_t shared_prefix_count = 0, shared_prefix_len = 0;
  bool ignore_eos = true;
  std::string summary_json, summary_csv, requests_jsonl;
  Slo slo;
  uint64_t seed = 0;
  std::optional<int64_t> vocab_size;  // unset: the model's, from GetModelInfo
  double request_timeout_s = 600;
  double connect_timeout_s = 10;
  bool quiet = false;
};

absl::StatusOr<LoadgenOptions> ParseLoadgenOptions(const std::vector<std::string>& args);

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_LOADGEN_OPTIONS_H_
