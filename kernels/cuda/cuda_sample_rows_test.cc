// Backend::SampleRows on CUDA against the CPU reference (kernels/cpu/sample_rows.h, itself tested
// against the definition in kernels/cpu/sample_rows_test.cc): vocabulary-wide rows under every
// mix of the filters, greedy rows among them, and edge rows. Skipped without a visible CUDA
// device.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/sample_rows.h"
#include "kernels/testing/cuda_kernels_fixture.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using testing::CudaKernelsTest;
using testing::RandomVector;

// SampleRows on both backends. The CUDA kernel sums the same double p in another order (a
// reduction, a scan), so its running sums differ from the CPU's by ~1e-16 of the mass per
// addition: rows whose draw lies closer than kMinMargin to a boundary of the walk (the CPU
// reference's margin) may legitimately differ and are not compared.
class CudaSampleRowsTest : public CudaKernelsTest {
 protected:
  static constexpr double kMinMargin = 1e-9;

  // Expects equal tokens on every row whose margin exceeds kMinMargin; returns how many there
  // were.
  int ExpectTokensMatchCpu(const std::vector<float>& logits, int64_t cols,
                           const std::vector<RowSampling>& params, const std::string& what) {
    const int64_t rows = std::ssize(params);
    auto d_logits = Upload(*cuda_, logits), d_params = Upload(*cuda_, params);
    auto d_out = Upload(*cuda_, std::vector<int32_t>(rows, -1));
    cuda_->SampleRows(d_logits->as<float>(), rows, cols, d_params->as<RowSampling>(),
                      d_out->as<int32_t>());
    const std::vector<int32_t> got = Download<int32_t>(*cuda_, *d_out);
    int compared = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const RowSampling& p = params[r];
      const cpu::SampledToken want = cpu::SampleRow(logits.data() + r * cols, cols, p);
      if (want.margin <= kMinMargin) continue;
      ++compared;
      EXPECT_EQ(got[r], want.token)
          << what << " row " << r << ": temperature " << p.temperature << " top_k " << p.top_k
          << " top_p " << p.top_p << " min_p " << p.min_p << " seed " << p.seed << " draw "
          << p.draw << " margin " << want.margin;
    }
    return compared;
  }
};

// Vocabulary-wide rows of ordinary logits under every mix of the filters.
TEST_F(CudaSampleRowsTest, MatchesCpuOnVocabularyRows) {
  constexpr int64_t kRows = 512, kCols = 50304;
  std::mt19937 rng(10);
  const std::vector<float> logits = RandomVector(kRows * kCols, rng, 3.0f);
  const float temperatures[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.5f};  // 0: greedy, the filters ignored
  const int32_t top_ks[] = {0, 1, 50, 1000};
  const float top_ps[] = {1.0f, 0.9f, 0.5f};
  const float min_ps[] = {0.0f, 0.05f};
  std::vector<RowSampling> params(kRows);
  for (int64_t r = 0; r < kRows; ++r) {  // every one of the 120 mixes, 4 or 5 times
    params[r].temperature = temperatures[r % 5];
    params[r].top_k = top_ks[r / 5 % 4];
    params[r].top_p = top_ps[r / 20 % 3];
    params[r].min_p = min_ps[r / 60 % 2];
    params[r].seed = 0x9E3779B97F4A7C15u * static_cast<uint64_t>(r + 1);
    params[r].draw = static_cast<uint64_t>(131 * r + 7);
  }
  // A row is within 1e-9 of one of its boundaries with probability ~1e-4 (a boundary per token).
  EXPECT_GE(ExpectTokensMatchCpu(logits, kCols, params, "vocabulary"), 500);
}

// Non-finite rows, single columns, ties (-0 and +0 among them) across the kernel's 1024-element
// tiles, exact top-p boundaries, and widths that are not a multiple of the tile; and each of these
// rows again at temperature 0, whose answer is the argmax whatever the other fields hold.
TEST_F(CudaSampleRowsTest, MatchesCpuOnEdgeRows) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::mt19937 rng(11);
  for (int64_t cols : {1, 1500, 50304}) {
    std::vector<std::vector<float>> rows;
    std::vector<RowSampling> params;
    auto add = [&](std::vector<float> row, RowSampling p) {
      p.seed = 1000 + rows.size();
      p.draw = 3 * rows.size();
      rows.push_back(std::move(row));
      params.push_back(p);
    };
    auto random_row = [&] { return RandomVector(cols, rng, 3.0f, -20.0f); };  // all below 0
    const RowSampling plain;
    RowSampling greedy;  // top_k = 1
    greedy.top_k = 1;

    add(std::vector<float>(cols, -inf), plain);
    add(std::vector<float>(cols, nan), plain);
    std::vector<float> row = random_row();
    row[cols / 2] = inf;
    add(row, plain);
    row = random_row();
    row[cols - 1] = 5.0f;
    add(row, plain);
    for (size_t i = 0; i < row.size(); i += 2) row[i] = i % 4 == 0 ? -inf : nan;
    add(row, plain);  // masked and NaN logits among candidates
    RowSampling cold;
    cold.temperature = 1e-30f;  // every p but the top's underflows to 0
    add(random_row(), cold);
    if (cols > 1) {
      std::vector<float> mix(cols, nan);
      mix[cols - 1] = -inf;
      add(mix, plain);
      // The max twice, as -0 and +0, the second copy in a later tile: equal logits, so top_k =
      // 1 keeps the lower index.
      for (bool negative_first : {true, false}) {
        row = random_row();
        row[1] = negative_first ? -0.0f : 0.0f;
        row[cols - 1] = negative_first ? 0.0f : -0.0f;
        add(row, greedy);
      }
      // Equal logits: top-k across tiles, and top-p on exact (integer) masses.
      RowSampling top_k = plain;
      top_k.top_k = static_cast<int32_t>(cols * 3 / 4);
      add(std::vector<float>(cols, 1.5f), top_k);
      RowSampling top_p = plain;
      top_p.top_p = 0.5f;
      add(std::vector<float>(cols, -2.0f), top_p);
      RowSampling mixed;
      mixed.temperature = 0.8f;
      mixed.top_k = 40;
      mixed.top_p = 0.9f;
      mixed.min_p = 0.02f;
      add(random_row(), mixed);
    }
    for (size_t i = 0, sampled = rows.size(); i < sampled; ++i) {
      RowSampling greedy_copy = params[i];
      greedy_copy.temperature = 0.0f;
      add(rows[i], greedy_copy);
    }
    std::vector<float> flat;
    for (const std::vector<float>& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    // Every edge row's draw is exact or far from a boundary: all of them are compared.
    EXPECT_EQ(ExpectTokensMatchCpu(flat, cols, params, absl::StrCat("cols ", cols)),
              std::ssize(params));
  }
}

}  // namespace
}  // namespace mlkv
