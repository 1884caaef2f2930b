// A bounded, thread-safe cache from a pre-tokenized word to its BPE token ids, so that text with
// repeated words (every real prompt) pays for each distinct word's merges once.
#ifndef MLKV_TOKENIZER_WORD_CACHE_H_
#define MLKV_TOKENIZER_WORD_CACHE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace mlkv {

// Thread-safety: every method may be called from any thread. The cache is split into shards,
// each with its own mutex, so that threads encoding different words rarely wait for each other.
// A full shard is emptied rather than managed LRU: the bookkeeping would cost more than the rare
// re-merge, and memory stays bounded at kNumShards * kShardCapacity words.
class WordCache {
 public:
  static constexpr size_t kNumShards = 32;
  static constexpr size_t kShardCapacity = 2048;
  // Longer words are not cached (they are rare, and would make the memory bound loose).
  static constexpr size_t kMaxWordBytes = 128;

  WordCache() = default;
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  // Appends the cached ids of `word` to `ids` and returns true; false when `word` is not cached.
  bool Lookup(std::string_view word, std::vector<int32_t>* ids) const;
  // Remembers `ids` (the whole encoding of `word`).
  void Insert(std::string_view word, const int32_t* ids, size_t num_ids);

 private:
  struct Shard {
    mutable absl::Mutex mutex;
    absl::flat_hash_map<std::string, std::vector<int32_t>> words ABSL_GUARDED_BY(mutex);
  };

  static size_t ShardIndex(std::string_view word);

  std::array<Shard, kNumShards> shards_;
};

}  // namespace mlkv

#endif  // MLKV_TOKENIZER_WORD_CACHE_H_
