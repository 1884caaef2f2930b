// Penalties, filtering and the seeded draw of SequenceSampler; see sampler.h.
#include "engine/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/argmax.h"
#include "kernels/cpu/vector_math.h"

namespace mlkv {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Token ids index the logits row: one out of range would write outside it.
void CheckTokenIds(std::span<const int32_t> tokens, size_t vocab_size) {
  for (int32_t token : tokens) {
    MLKV_CHECK(token >= 0 && static_cast<size_t>(token) < vocab_size,
               "sampler: token id {} outside the vocabulary of {}", token, vocab_size);
  }
}

// A token still in the running. `prob` is unnormalized, exp((logit - max) / temperature), so the
// top token has exactly 1 and every filter below can work without normalizing first.
struct Candidate {
  float logit;
  int32_t token;
  float prob;
};

// A strict total order, highest logit first and the lower id on ties. Ordering by logit rather
// than by prob keeps top_k = 1 identical to greedy even where two close logits round to one prob.
bool Precedes(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
}

// Moves the candidates of c[lo, hi) that precede `pivot` to the front of the range and returns
// where they end. Hoare's scheme: it moves only misplaced pairs, and measured about twice as fast
// as Lomuto's on a 50k vocabulary. Written out rather than std::partition so that the arrangement,
// and hence the order of the sums and of the draw, is the same on every standard library.
size_t Partition(std::span<Candidate> c, size_t lo, size_t hi, const Candidate& pivot) {
  while (true) {
    while (lo < hi && Precedes(c[lo], pivot)) ++lo;
    while (lo < hi && !Precedes(c[hi - 1], pivot)) --hi;
    if (lo >= hi) return lo;
    std::swap(c[lo], c[hi - 1]);
    ++lo;
    --hi;
  }
}

// Reorders `c` so that c[0, n) is the shortest prefix, in Precedes order, whose summed `weight`
// reaches `threshold`, and returns n (at least 1 when `c` is not empty). With weight 1 this is
// top-k; with the probabilities, top-p. Quickselect on the running weight: expected O(c.size())
// and no sort, where sorting a large nucleus would cost more than all the rest of sampling. The
// kept prefix comes out in no particular order, but in the same order for the same input.
template <typename Weight>
size_t SelectPrefix(std::span<Candidate> c, double threshold, Weight weight) {
  size_t lo = 0;
  size_t hi = c.size();
  double before = 0.0;  // weight of c[0, lo); invariant: before < threshold
  while (hi - lo > 1) {
    // Median of three, moved to hi - 1: logits already in order (all equal, say, so ordered by
    // id) would otherwise make every partition lopsided and the selection quadratic.
    const size_t mid = lo + (hi - lo) / 2;
    if (Precedes(c[mid], c[lo])) std::swap(c[mid], c[lo]);
    if (Precedes(c[hi - 1], c[lo])) std::swap(c[hi - 1], c[lo]);
    if (Precedes(c[mid], c[hi - 1])) std::swap(c[mid], c[hi - 1]);
    const Candidate pivot = c[hi - 1];
    const size_t split = Partition(c, lo, hi - 1, pivot);
    std::swap(c[split], c[hi - 1]);  // the pivot to its place: all before precede it
    double ahead = 0.0;  // weight of c[lo, split), the candidates that precede the pivot
    for (size_t i = lo; i < split; ++i) ahead += weight(c[i]);
    if (before + ahead >= threshold) {
      hi = split;  // the cut falls among those ahead of the pivot
    } else if (before + ahead + weight(c[split]) >= threshold) {
      return split + 1;  // the pivot is the last one kept
    } else {
      before += ahead + weight(c[split]);
      lo = split + 1;
    }
  }
  // One candidate left undecided (or none: only rounding leaves the whole list short of the
  // threshold, and then everything is kept). Everything before it falls short, so it is kept.
  return c.empty() ? 0 : std::max<size_t>(hi, 1);
}

// top-k. First a cheap pass that drops most of the vocabulary: cut into k blocks, the k block
// maxima are k distinct logits, so the k-th largest logit is at least the smallest block maximum.
// Those at or above that bound are a Precedes-prefix holding the top k, typically a few times k
// for k << vocabulary; a quickselect then finds the k exactly. Both passes are well predicted,
// where partitioning the whole vocabulary around a median mispredicts every other branch.
void KeepTopK(std::vector<Candidate>& c, size_t k) {
  constexpr size_t kMinBlock = 16;  // below this the bound prunes too little to pay for itself
  if (k * kMinBlock <= c.size()) {
    const size_t n = c.size();
    float bound = std::numeric_limits<float>::infinity();
    for (size_t block = 0; block < k; ++block) {
      float block_max = kNegInf;
      for (size_t i = block * n / k; i < (block + 1) * n / k; ++i) {
        block_max = std::max(block_max, c[i].logit);
      }
      bound = std::min(bound, block_max);
    }
    std::erase_if(c, [bound](const Candidate& x) { return x.logit < bound; });
  }
  c.resize(SelectPrefix(std::span<Candidate>(c), static_cast<double>(k),
                        [](const Candidate&) { return 1.0; }));
}

// Probabilities by power of two: prob in [2^-b, 2^(1-b)) lands in bucket b, from the float's
// exponent bits (no log); 1 lands in 0, and tiny, subnormal and zero probs share the last bucket.
constexpr int kProbBuckets = 64;
int ProbBucket(float prob) {
  const int exponent = static_cast<int>(std::bit_cast<uint32_t>(prob) >> 23);  // prob >= 0
  return std::clamp(127 - exponent, 0, kProbBuckets - 1);
}

// top-p: keeps the shortest Precedes-prefix whose mass reaches `threshold`. Buckets follow the
// Precedes order, so the buckets up to the one where the running mass reaches the threshold hold
// a prefix containing the nucleus: one histogram pass sets aside the bulk of the vocabulary
// before the quickselect on mass.
void KeepNucleus(std::vector<Candidate>& c, double threshold) {
  constexpr size_t kMinForHistogram = 1024;
  if (c.size() >= kMinForHistogram) {
    double bucket_mass[kProbBuckets] = {};
    for (const Candidate& x : c) bucket_mass[ProbBucket(x.prob)] += x.prob;
    int last = 0;
    double mass = bucket_mass[0];
    while (mass < threshold && last + 1 < kProbBuckets) mass += bucket_mass[++last];
    std::erase_if(c, [last](const Candidate& x) { return ProbBucket(x.prob) > last; });
  }
  c.resize(SelectPrefix(std::span<Candidate>(c), threshold,
                        [](const Candidate& x) { return static_cast<double>(x.prob); }));
}

}  // namespace

void ApplyPenalties(const SamplingParams& params, std::span<float> logits,
                    std::span<const int32_t> prompt_tokens,
                    std::span<const int32_t> output_tokens) {
  const bool repetition = params.repetition_penalty != 1.0f;
  const bool additive = params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f;
  if (!repetition && !additive) return;
  CheckTokenIds(prompt_tokens, logits.size());
  CheckTokenIds(output_tokens, logits.size());

  if (repetition) {
    // Once per distinct token, however often it was seen.
    std::vector<int32_t> seen(prompt_tokens.begin(), prompt_tokens.end());
    seen.insert(seen.end(), output_tokens.begin(), output_tokens.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const float penalty = params.repetition_penalty;
    for (int32_t token : seen) {
      float& logit = logits[token];
      logit = logit > 0.0f ? logit / penalty : logit * penalty;
    }
  }

  if (additive && !output_tokens.empty()) {
    // Sorting groups equal tokens, so each run's length is that token's count.
    std::vector<int32_t> sorted(output_tokens.begin(), output_tokens.end());
    std::sort(sorted.begin(), sorted.end());
    for (size_t run = 0; run < sorted.size();) {
      size_t run_end = run + 1;
      while (run_end < sorted.size() && sorted[run_end] == sorted[run]) ++run_end;
      const float count = static_cast<float>(run_end - run);
      logits[sorted[run]] -= params.presence_penalty + params.frequency_penalty * count;
      run = run_end;
    }
  }
}

SequenceSampler::SequenceSampler(const SamplingParams& params, uint64_t default_seed)
    : params_(params), rng_(params.seed.value_or(default_seed)) {}

int32_t SequenceSampler::Sample(std::span<float> logits, std::span<const int32_t> prompt_tokens,
                                std::span<const int32_t> output_tokens) {
  MLKV_CHECK(!logits.empty(), "sampler: empty logits row");
  ApplyPenalties(params_, logits, prompt_tokens, output_tokens);

  const size_t best = static_cast<size_t>(cpu::ArgmaxRow(logits.data(), std::ssize(logits)));
  const float max_logit = logits[best];
  // A +inf logit is a certainty and an all -inf/NaN row leaves nothing to weigh: in both cases the
  // probabilities below would be NaN, so the argmax is the only sensible answer.
  if (params_.is_greedy() || !std::isfinite(max_logit)) return static_cast<int32_t>(best);

  // -inf and NaN logits have no mass; dropping them first shrinks everything that follows.
  std::vector<Candidate> candidates;
  candidates.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > kNegInf) candidates.push_back({logits[i], static_cast<int32_t>(i), 0.0f});
  }

  const size_t top_k = static_cast<size_t>(std::max(params_.top_k, 0));
  if (top_k > 0 && top_k < candidates.size()) KeepTopK(candidates, top_k);

  // Temperature on the difference from the max: (logit - max) <= 0, so dividing by a tiny
  // temperature tends to -inf (prob 0) instead of overflowing as logit / temperature would.
  // FastExp rather than libm's: this pass runs over the whole vocabulary for every sampled token,
  // and vectorised it costs microseconds where expf took ~0.2 ms a row on the host's critical
  // path. It is also the same on every libm, so seeded draws no longer depend on the platform.
  Candidate* c = candidates.data();
  const size_t n = candidates.size();
  const float temperature = params_.temperature;
  double total = 0.0;
#pragma omp simd reduction(+ : total)
  for (size_t i = 0; i < n; ++i) {
    c[i].prob = cpu::FastExp((c[i].logit - max_logit) / temperature);
    total += c[i].prob;
  }

  // top-p over what top-k kept, renormalized (as HF): the threshold is a share of `total`.
  if (params_.top_p < 1.0f) KeepNucleus(candidates, static_cast<double>(params_.top_p) * total);

  // min-p. p_max is the top token's 1 (every filter keeps the top token), and the ratio test needs
  // no normalization.
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p;
    std::erase_if(candidates, [threshold](const Candidate& c) { return c.prob < threshold; });
  }

  // Renormalize implicitly: draw a point in [0, total) and walk the candidates, in the order the
  // filters left them, until the running mass passes it.
  total = 0.0;
  const Candidate* kept = candidates.data();
  const size_t num_kept = candidates.size();
#pragma omp simd reduction(+ : total)
  for (size_t i = 0; i < num_kept; ++i) total += kept[i].prob;
  // The top 53 bits make a double in [0, 1) the same way on every standard library.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * total;
  double mass = 0.0;
  for (const Candidate& c : candidates) {
    mass += c.prob;
    if (mass > target) return c.token;  // strict: a zero-prob token can never be chosen
  }
  // Unreachable but for rounding in the sums: fall back to the last token with any mass.
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (it->prob > 0.0f) return it->token;
  }
  return static_cast<int32_t>(best);
}

}  // namespace mlkv
