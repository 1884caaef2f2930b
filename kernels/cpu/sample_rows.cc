// Row-wise sampling on the CPU; see sample_rows.h. The numbered steps are those of
// Backend::SampleRows in kernels/backend.h.
#include "kernels/cpu/sample_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/philox.h"
#include "kernels/cpu/argmax.h"
#include "kernels/sample_weight.h"

namespace mlkv::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Candidate {
  int32_t index;
  float logit;
  double p = 0.0;  // unnormalised: the top token's is 1
};

// The rank order: a strict total order, so every filter's cut is unique.
bool Precedes(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.index < b.index);
}

// The rank filters reorder the candidates; the walk and min-p want them in index order.
void SortByIndex(std::vector<Candidate>& candidates) {
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.index < b.index; });
}

double SumOfP(const std::vector<Candidate>& candidates) {
  double sum = 0.0;
  for (const Candidate& c : candidates) sum += c.p;
  return sum;
}

}  // namespace

SampledToken SampleRow(const float* row, int64_t cols, const RowSampling& params) {
  // 0. A greedy row. 1. A +inf logit is a certainty and a row without candidates has nothing to
  // weigh.
  const int32_t best = static_cast<int32_t>(ArgmaxRow(row, cols));
  const float max = row[best];
  if (params.temperature == 0.0f || !std::isfinite(max)) {
    return {best, std::numeric_limits<double>::infinity()};
  }

  // Gathered in index order, which every step below leaves them in.
  std::vector<Candidate> kept;
  kept.reserve(cols);
  for (int64_t i = 0; i < cols; ++i) {
    if (row[i] > kNegInf) kept.push_back({static_cast<int32_t>(i), row[i]});  // false for NaN
  }

  // 3. top-k.
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < kept.size()) {
    std::nth_element(kept.begin(), kept.begin() + params.top_k, kept.end(), Precedes);
    kept.resize(params.top_k);
    SortByIndex(kept);
  }

  // 4. Unnormalised probabilities: every filter below compares them without needing the sum.
  for (Candidate& c : kept) c.p = SampleWeight(c.logit, max, params.temperature);

  // 5. top-p: the shortest rank-order prefix reaching the threshold. Only that prefix needs rank
  // order: chunks of doubling size are selected and sorted in turn until the mass suffices, so a
  // nucleus of m tokens costs O(n log m) rather than a sort of the whole row (4 ms at 50k).
  if (params.top_p < 1.0f) {
    const double threshold = static_cast<double>(params.top_p) * SumOfP(kept);
    double mass = 0.0;
    size_t prefix = 0;
    for (size_t chunk = 256; prefix < kept.size() && mass < threshold; chunk *= 2) {
      const auto chunk_end = kept.begin() + std::min(kept.size(), prefix + chunk);
      std::nth_element(kept.begin() + prefix, chunk_end, kept.end(), Precedes);
      std::sort(kept.begin() + prefix, chunk_end, Precedes);
      while (kept.begin() + prefix < chunk_end && mass < threshold) mass += kept[prefix++].p;
    }
    kept.resize(prefix);
    SortByIndex(kept);
  }

  // 6. min-p: the top token's p is 1, so the ratio to it is p itself.
  if (params.min_p > 0.0f) {
    std::erase_if(kept, [&params](const Candidate& c) { return c.p < params.min_p; });
  }

  // 7. The walk, in index order.
  const double kept_total = SumOfP(kept);
  const double target = PhiloxUniform(params.seed, params.draw) * kept_total;
  SampledToken drawn{-1, std::numeric_limits<double>::infinity()};
  int32_t last_with_mass = best;  // the answer should rounding leave the walk short of the target
  double running = 0.0;
  for (const Candidate& c : kept) {
    running += c.p;
    drawn.margin = std::min(drawn.margin, std::fabs(running - target) / kept_total);
    if (c.p > 0.0) last_with_mass = c.index;
    // Strict: a token with p = 0 leaves `running` as it was, so it cannot be the first past.
    if (drawn.token < 0 && running > target) drawn.token = c.index;
  }
  if (drawn.token < 0) drawn.token = last_with_mass;
  return drawn;
}

void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                int32_t* out) {
#pragma omp parallel for schedule(dynamic)
  for (int64_t r = 0; r < rows; ++r) out[r] = SampleRow(logits + r * cols, cols, params[r]).token;
}

}  // namespace mlkv::cpu
