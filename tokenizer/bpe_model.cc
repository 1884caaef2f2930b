// BPE merging; see bpe_model.h.
#include "tokenizer/bpe_model.h"

#include <limits>
#include <queue>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tokenizer/byte_level.h"

namespace mlkv {
namespace {

// Bytes that well-formed UTF-8 never contains (overlong leads C0/C1, leads beyond U+10FFFF):
// GPT-NeoX's vocabulary has no tokens for them, and needs none.
bool CanOccurInUtf8(int byte) { return byte != 0xC0 && byte != 0xC1 && byte < 0xF5; }

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(Vocab vocab, const MergeList& merges) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  absl::flat_hash_map<int32_t, const std::string*> by_id;
  for (const auto& [token, id] : vocab) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab: token \"", token, "\" has negative id ", id));
    }
    auto [it, inserted] = by_id.emplace(id, &token);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " is used by both \"",
                                                     *it->second, "\" and \"", token, "\""));
    }
  }
  for (int b = 0; b < 256; ++b) {
    const std::string token = byte_level::BytesToToken(std::string(1, static_cast<char>(b)));
    auto it = vocab.find(token);
    if (it != vocab.end()) {
      model->byte_ids_[b] = it->second;
    } else if (CanOccurInUtf8(b)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model.vocab: has no token for byte 0x%02X (\"%s\"); a byte-level BPE vocabulary "
          "needs every byte of UTF-8 text (unk_token and byte_fallback are not supported)",
          b, token));
    } else {
      model->byte_ids_[b] = -1;  // never looked up: words are well-formed UTF-8
    }
  }
  if (merges.size() > size_t(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("model.merges: too many merges");
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    for (const std::string* part : {&left, &right}) {
      if (!vocab.contains(*part)) {
        return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "]: \"", left, " ",
                                                       right, "\" names \"", *part,
                                                       "\", which is not in the vocabulary"));
      }
    }
    auto merged = vocab.find(left + right);
    if (merged == vocab.end()) {
      return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "]: \"", left, " ",
                                                     right, "\" makes \"", left, right,
                                                     "\", which is not in the vocabulary"));
    }
    // A pair listed twice keeps its last rank, as in Hugging Face (its map insert overwrites).
    model->merges_[PairKey(vocab[left], vocab[right])] =
        Merge{static_cast<int32_t>(rank), merged->second};
  }
  model->num_merges_ = merges.size();
  model->vocab_ = std::move(vocab);
  return model;
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() == 1) {
    ids->push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
    return;
  }
  if (cache_.Lookup(word, ids)) return;
  const size_t first = ids->size();
  MergeWord(word, ids);
  cache_.Insert(word, ids->data() + first, ids->size() - first);
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() <= kMaxScanBytes) {
    MergeByScan(word, ids);
  } else {
    MergeByHeap(word, ids);
  }
}

// The ranks of adjacent pairs sit in an array beside the symbols; each step finds the smallest
// (strict < keeps the leftmost of equal ranks), merges it, and looks up only the two pairs the
// merge changed. Quadratic in the word length, but with no allocation beyond two small vectors.
void BpeModel::MergeByScan(std::string_view word, std::vector<int32_t>* ids) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  const size_t n = word.size();
  // Small fixed buffers for short words keep the common case off the heap.
  int32_t symbol_buffer[kMaxScanBytes];
  int32_t rank_buffer[kMaxScanBytes];
  std::vector<int32_t> symbol_vector, rank_vector;
  int32_t* symbols = symbol_buffer;
  int32_t* ranks = rank_buffer;  // ranks[i]: the merge of symbols[i] and symbols[i + 1]
  if (n > kMaxScanBytes) {
    symbol_vector.resize(n);
    rank_vector.resize(n);
    symbols = symbol_vector.data();
    ranks = rank_vector.data();
  }
  for (size_t i = 0; i < n; ++i) symbols[i] = byte_ids_[static_cast<uint8_t>(word[i])];
  auto rank_of = [&](size_t i) {
    const Merge* merge = FindMerge(symbols[i], symbols[i + 1]);
    return merge ? merge->rank : kNone;
  };
  size_t count = n;
  for (size_t i = 0; i + 1 < count; ++i) ranks[i] = rank_of(i);
  while (count > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < count; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == kNone) break;
    symbols[best] = FindMerge(symbols[best], symbols[best + 1])->new_id;
    for (size_t i = best + 1; i + 1 < count; ++i) symbols[i] = symbols[i + 1];
    for (size_t i = best + 1; i + 2 < count; ++i) ranks[i] = ranks[i + 1];
    --count;
    if (best + 1 < count) ranks[best] = rank_of(best);
    if (best > 0) ranks[best - 1] = rank_of(best - 1);
  }
  ids->insert(ids->end(), symbols, symbols + count);
}

// Hugging Face's algorithm: a min-heap of candidate merges keyed by (rank, position) over a
// doubly linked list of symbols; an entry whose pair has changed since it was pushed is stale
// and skipped. A pair's merged id identifies it, because symbols only ever grow to the right.
void BpeModel::MergeByHeap(std::string_view word, std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;  // -1: none
    int32_t next;  // -1: none
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const Merge* merge = FindMerge(symbols[pos].id, symbols[next].id)) {
      heap.push({merge->rank, pos, merge->new_id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* merge = FindMerge(left.id, right.id);
    if (merge == nullptr || merge->new_id != top.new_id) continue;  // stale
    left.id = merge->new_id;
    left.next = right.next;
    right.alive = false;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace mlkv
