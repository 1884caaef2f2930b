// The BPE model of a byte-level tokenizer: a vocabulary and ranked merges, applied to one
// pre-tokenized word at a time, with a cache of the words already seen.
#ifndef MLKV_TOKENIZER_BPE_MODEL_H_
#define MLKV_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "tokenizer/word_cache.h"

namespace mlkv {

// Thread-safety: immutable after Create except for the internally synchronized word cache, so
// EncodeWord may be called from several threads at once.
class BpeModel {
 public:
  using Vocab = absl::flat_hash_map<std::string, int32_t>;
  using MergeList = std::vector<std::pair<std::string, std::string>>;

  // `vocab` maps token text, written in the byte-level alphabet (byte_level.h), to ids; `merges`
  // lists the merges by rank (first = applied first). Errors: an id used twice, a byte of UTF-8
  // without a token (BPE would have nothing to start from), a merge naming a token not in
  // `vocab`, a merge whose result is not in `vocab`.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(Vocab vocab, const MergeList& merges);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of `word` (well-formed UTF-8, not empty), consulting and filling the cache.
  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  // The merges without the cache, with the algorithm chosen by length: both give the result of
  // "repeatedly merge the lowest-ranked adjacent pair, leftmost first".
  void MergeWord(std::string_view word, std::vector<int32_t>* ids) const;
  // The two algorithms, exposed so tests can check that they agree.
  void MergeByScan(std::string_view word, std::vector<int32_t>* ids) const;
  void MergeByHeap(std::string_view word, std::vector<int32_t>* ids) const;

  const Vocab& vocab() const { return vocab_; }
  size_t num_merges() const { return num_merges_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // Words up to this many bytes use the scan (fast for short words, quadratic); longer ones the
  // heap (n log n), so that a 100 kB run of letters does not stall the encoder.
  static constexpr size_t kMaxScanBytes = 64;

  BpeModel() = default;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  const Merge* FindMerge(int32_t left, int32_t right) const {
    auto it = merges_.find(PairKey(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }

  Vocab vocab_;
  std::array<int32_t, 256> byte_ids_{};  // the token of each byte; -1 for C0, C1, F5..FF
  absl::flat_hash_map<uint64_t, Merge> merges_;
  size_t num_merges_ = 0;
  mutable WordCache cache_;  // internally synchronized
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_BPE_MODEL_H_
