// Summary arithmetic; see summary.h.
#include "tools/loadgen/summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mlkv::loadgen {

double Percentile(const std::vector<double>& sorted, double q) {
  const double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

std::optional<LatencyStats> StatsMs(std::vector<double> samples_s) {
  if (samples_s.empty()) return std::nullopt;
  for (double& s : samples_s) s *= 1e3;
  std::sort(samples_s.begin(), samples_s.end());
  LatencyStats stats;
  stats.mean = std::accumulate(samples_s.begin(), samples_s.end(), 0.0) /
               static_cast<double>(samples_s.size());
  stats.p50 = Percentile(samples_s, 50);
  stats.p90 = Percentile(samples_s, 90);
  stats.p99 = Percentile(samples_s, 99);
  stats.max = samples_s.back();
  return stats;
}

bool MeetsSlo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok()) return false;
  const auto within = [](std::optional<double> value_s, std::optional<double> limit_ms) {
    return !limit_ms.has_value() || !value_s.has_value() || *value_s * 1e3 <= *limit_ms;
  };
  return within(r.ttft_s(), slo.ttft_ms) && within(r.tpot_s(), slo.itl_ms) &&
         within(r.e2e_s(), slo.e2e_ms);
}

Summary Summarize(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo) {
  Summary s;
  s.duration_s = duration_s;
  std::vector<double> ttft, itl, tpot, e2e;
  int64_t good = 0;
  for (const RequestRecord& r : records) {
    if (!r.ok()) {
      ++s.failed;
      ++s.errors_by_code[absl::StatusCodeToString(r.code)];
      continue;
    }
    ++s.completed;
    s.input_tokens += r.prompt_tokens;
    s.cached_prompt_tokens += r.cached_prompt_tokens;
    s.output_tokens += r.output_tokens();
    s.expected_output_tokens += r.expected_output_tokens;
    if (auto t = r.ttft_s()) ttft.push_back(*t);
    if (auto t = r.tpot_s()) tpot.push_back(*t);
    const std::vector<double> gaps = r.itl_s();
    itl.insert(itl.end(), gaps.begin(), gaps.end());
    e2e.push_back(r.e2e_s());
    if (MeetsSlo(r, slo)) ++good;
  }
  // A point that sent nothing (the server was unreachable) has no duration and no rates.
  const auto per_s = [&](int64_t n) {
    return duration_s > 0 ? static_cast<double>(n) / duration_s : 0.0;
  };
  s.requests_per_s = per_s(s.completed);
  s.input_tokens_per_s = per_s(s.input_tokens);
  s.output_tokens_per_s = per_s(s.output_tokens);
  s.goodput = per_s(good);
  s.slo_attainment = records.empty() ? 0.0 : static_cast<double>(good) / records.size();
  s.ttft_ms = StatsMs(std::move(ttft));
  s.itl_ms = StatsMs(std::move(itl));
  s.tpot_ms = StatsMs(std::move(tpot));
  s.e2e_ms = StatsMs(std::move(e2e));
  return s;
}

}  // namespace mlkv::loadgen
