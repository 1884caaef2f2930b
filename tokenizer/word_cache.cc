// The sharded word cache; see word_cache.h.
#include "tokenizer/word_cache.h"

#include "absl/hash/hash.h"

namespace mlkv {

size_t WordCache::ShardIndex(std::string_view word) {
  // The high bits: the map inside the shard hashes the same word and uses the low ones.
  return (absl::HashOf(word) >> 40) % kNumShards;
}

bool WordCache::Lookup(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& shard = shards_[ShardIndex(word)];
  absl::MutexLock lock(&shard.mutex);
  // Debian's Abseil has its own string_view, which heterogeneous lookup needs.
  auto it = shard.words.find(absl::string_view(word.data(), word.size()));
  if (it == shard.words.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::Insert(std::string_view word, const int32_t* ids, size_t num_ids) {
  if (word.size() > kMaxWordBytes) return;
  Shard& shard = shards_[ShardIndex(word)];
  absl::MutexLock lock(&shard.mutex);
  if (shard.words.size() >= kShardCapacity) shard.words.clear();
  shard.words.try_emplace(std::string(word), ids, ids + num_ids);
}

}  // namespace mlkv
