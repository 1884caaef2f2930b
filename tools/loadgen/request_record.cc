// Latencies derived from a request's chunk times; see request_record.h.
#include "tools/loadgen/request_record.h"

namespace mlkv::loadgen {

int64_t RequestRecord::output_tokens() const {
  int64_t n = 0;
  for (const Chunk& c : chunks) n += c.tokens;
  return n;
}

std::optional<double> RequestRecord::ttft_s() const {
  if (chunks.empty()) return std::nullopt;
  return chunks.front().time_s - start_s;
}

std::optional<double> RequestRecord::tpot_s() const {
  const int64_t n = output_tokens();
  if (n < 2) return std::nullopt;
  return (chunks.back().time_s - chunks.front().time_s) / static_cast<double>(n - 1);
}

std::vector<double> RequestRecord::itl_s() const {
  std::vector<double> gaps;
  // The first chunk's first token is the TTFT; its other tokens arrived with no gap.
  if (!chunks.empty()) gaps.assign(chunks.front().tokens - 1, 0.0);
  for (size_t i = 1; i < chunks.size(); ++i) {
    const double gap = chunks[i].time_s - chunks[i - 1].time_s;
    gaps.insert(gaps.end(), chunks[i].tokens, gap / static_cast<double>(chunks[i].tokens));
  }
  return gaps;
}

}  // namespace mlkv::loadgen
