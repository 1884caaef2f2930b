// The figures of one sweep point: throughput, latency percentiles, goodput under SLOs and errors,
// computed from the requests' records.
#ifndef MLKV_TOOLS_LOADGEN_SUMMARY_H_
#define MLKV_TOOLS_LOADGEN_SUMMARY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/loadgen/request_record.h"

namespace mlkv::loadgen {

// Latency statistics in milliseconds. Percentiles interpolate linearly between the two nearest
// ranks (NumPy's default), so p50 of {1, 2} is 1.5.
struct LatencyStats {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// The q-th percentile (q in [0, 100]) of `sorted` (ascending, non-empty).
double Percentile(const std::vector<double>& sorted, double q);
// Statistics of samples given in seconds, reported in milliseconds; unset when there are none.
std::optional<LatencyStats> StatsMs(std::vector<double> samples_s);

// A request meets the SLOs when it completed and each threshold that is set holds: its TTFT, its
// mean inter-token latency (= its TPOT; a request with one token has none and passes) and its
// end-to-end latency.
struct Slo {
  std::optional<double> ttft_ms, itl_ms, e2e_ms;
};
bool MeetsSlo(const RequestRecord& r, const Slo& slo);

struct Summary {
  int64_t completed = 0, failed = 0;
  int64_t input_tokens = 0, output_tokens = 0, cached_prompt_tokens = 0;  // completed requests
  int64_t expected_output_tokens = 0;  // sum of max_tokens over completed requests
  double duration_s = 0;
  double requests_per_s = 0, input_tokens_per_s = 0, output_tokens_per_s = 0;
  double goodput = 0;         // completed requests per second that met the SLOs
  double slo_attainment = 0;  // their share of all requests (0 with no requests)
  std::optional<LatencyStats> ttft_ms, itl_ms, tpot_ms, e2e_ms;
  std::map<std::string, int64_t> errors_by_code;  // "UNAVAILABLE" -> count
};

// `duration_s` is the measured wall time of the point; failed requests count in failed and
// errors_by_code only.
Summary Summarize(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo);

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_SUMMARY_H_
