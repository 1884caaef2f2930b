// BlockPool: the free stack, the intrusive LRU list of evictable blocks and the prefix index.
#include "scheduler/block_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace mlkv {

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size), blocks_(num_blocks) {
  MLKV_CHECK(num_blocks > 0 && block_size > 0, "num_blocks {} and block_size {} must be positive",
             num_blocks, block_size);
  // Pushed in reverse so that a fresh pool hands out 0, 1, 2, ... (easy to read in tests).
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

PrefixId BlockPool::prefix_id(int32_t block) const {
  MLKV_CHECK(is_cached(block), "block {} is not cached", block);
  return blocks_[block].id;
}

absl::Span<const int32_t> BlockPool::StoredTokens(int32_t block) const {
  return absl::MakeConstSpan(tokens_).subspan(static_cast<size_t>(block) * block_size_,
                                              block_size_);
}

void BlockPool::LruPushBack(int32_t block) {
  Block& b = blocks_[block];
  b.lru_prev = lru_tail_;
  b.lru_next = kNone;
  if (lru_tail_ == kNone) {
    lru_head_ = block;
  } else {
    blocks_[lru_tail_].lru_next = block;
  }
  lru_tail_ = block;
  ++num_evictable_;
}

void BlockPool::LruRemove(int32_t block) {
  Block& b = blocks_[block];
  if (b.lru_prev == kNone) {
    lru_head_ = b.lru_next;
  } else {
    blocks_[b.lru_prev].lru_next = b.lru_next;
  }
  if (b.lru_next == kNone) {
    lru_tail_ = b.lru_prev;
  } else {
    blocks_[b.lru_next].lru_prev = b.lru_prev;
  }
  b.lru_prev = b.lru_next = kNone;
  --num_evictable_;
}

int32_t BlockPool::EvictLeastRecentlyUsed() {
  const int32_t block = lru_head_;
  MLKV_CHECK(block != kNone, "no evictable block");
  LruRemove(block);
  Block& b = blocks_[block];
  const size_t erased = index_.erase(ContentKey{b.parent, StoredTokens(block)});
  MLKV_CHECK(erased == 1, "evicted block {} was not in the prefix index", block);
  b.id = kRootPrefix;
  b.parent = kRootPrefix;
  ++num_evictions_;
  return block;
}

bool BlockPool::Allocate(int32_t n, std::vector<int32_t>* out) {
  MLKV_CHECK(n >= 0, "cannot allocate {} blocks", n);
  if (n > num_free_blocks()) return false;
  for (int32_t i = 0; i < n; ++i) {
    int32_t block;
    if (!free_.empty()) {
      block = free_.back();
      free_.pop_back();
    } else {
      block = EvictLeastRecentlyUsed();
    }
    MLKV_CHECK(blocks_[block].ref_count == 0, "free block {} has ref_count {}", block,
               blocks_[block].ref_count);
    blocks_[block].ref_count = 1;
    out->push_back(block);
  }
  return true;
}

std::optional<int32_t> BlockPool::Lookup(PrefixId parent, absl::Span<const int32_t> tokens) const {
  MLKV_CHECK(static_cast<int32_t>(tokens.size()) == block_size_,
             "a prefix-cache key holds {} tokens, not {}", tokens.size(), block_size_);
  auto it = index_.find(ContentKey{parent, tokens});
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

void BlockPool::Acquire(int32_t block) {
  Block& b = blocks_[block];
  MLKV_CHECK(b.id != kRootPrefix, "only cached blocks are shared; block {} is not", block);
  if (b.ref_count == 0) LruRemove(block);
  ++b.ref_count;
}

void BlockPool::Release(absl::Span<const int32_t> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const int32_t block = *it;
    Block& b = blocks_[block];
    MLKV_CHECK(b.ref_count > 0, "block {} released more often than held", block);
    if (--b.ref_count > 0) continue;
    if (b.id != kRootPrefix) {
      LruPushBack(block);
    } else {
      free_.push_back(block);
    }
  }
}

PrefixId BlockPool::Cache(int32_t block, PrefixId parent, absl::Span<const int32_t> tokens) {
  MLKV_CHECK(static_cast<int32_t>(tokens.size()) == block_size_,
             "a cached block holds {} tokens, not {}", tokens.size(), block_size_);
  Block& b = blocks_[block];
  MLKV_CHECK(b.ref_count > 0 && b.id == kRootPrefix,
             "block {} must be held and not yet cached (ref_count {}, id {})", block, b.ref_count,
             b.id);
  if (tokens_.empty()) {
    // First use: size everything once, so caching never reallocates (no latency spikes, and
    // stored keys keep pointing into tokens_).
    tokens_.resize(blocks_.size() * static_cast<size_t>(block_size_));
    index_.reserve(blocks_.size());
  }
  // Copy first so that one probe both looks up and inserts. If the content is already cached the
  // copy is dead data in an uncached block's slot.
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + static_cast<ptrdiff_t>(block) * block_size_);
  auto [it, inserted] = index_.try_emplace(ContentKey{parent, StoredTokens(block)}, block);
  if (!inserted) return blocks_[it->second].id;
  b.id = next_id_++;
  b.parent = parent;
  return b.id;
}

absl::Status BlockPool::CheckInvariants(absl::Span<const int32_t> expected_ref_counts) const {
  auto fail = [](auto&&... parts) { return absl::InternalError(absl::StrCat(parts...)); };
  const int32_t n = num_blocks();
  if (static_cast<int32_t>(expected_ref_counts.size()) != n) {
    return fail("expected_ref_counts has ", expected_ref_counts.size(), " entries, not ", n);
  }
  // 0: not seen, 1: on the free stack, 2: on the LRU list.
  std::vector<uint8_t> seen(n, 0);
  for (int32_t block : free_) {
    if (block < 0 || block >= n) return fail("free stack holds bad block id ", block);
    if (seen[block]) return fail("block ", block, " is on the free stack twice");
    seen[block] = 1;
    if (blocks_[block].ref_count != 0 || is_cached(block)) {
      return fail("block ", block, " on the free stack has ref_count ", blocks_[block].ref_count,
                  (is_cached(block) ? " and is cached" : ""));
    }
  }
  int32_t lru_length = 0;
  for (int32_t block = lru_head_, prev = kNone; block != kNone;
       prev = block, block = blocks_[block].lru_next) {
    if (block < 0 || block >= n) return fail("LRU list holds bad block id ", block);
    if (seen[block]) return fail("block ", block, " is on the LRU list and elsewhere");
    seen[block] = 2;
    if (blocks_[block].lru_prev != prev) return fail("LRU back link of block ", block, " is wrong");
    if (blocks_[block].ref_count != 0 || !is_cached(block)) {
      return fail("evictable block ", block, " has ref_count ", blocks_[block].ref_count,
                  " or is uncached");
    }
    if (blocks_[block].lru_next == kNone && block != lru_tail_) return fail("LRU tail is wrong");
    ++lru_length;
  }
  if (lru_length != num_evictable_) {
    return fail("LRU list holds ", lru_length, " blocks, counted ", num_evictable_);
  }
  int32_t num_cached = 0;
  for (int32_t block = 0; block < n; ++block) {
    const Block& b = blocks_[block];
    if (b.ref_count < 0) return fail("block ", block, " has negative ref_count ", b.ref_count);
    if (b.ref_count != expected_ref_counts[block]) {
      return fail("block ", block, " has ref_count ", b.ref_count, " but its owners hold ",
                  expected_ref_counts[block], " references (leaked or double-freed)");
    }
    if (b.ref_count == 0 && !seen[block]) return fail("unheld block ", block, " is not free");
    if (b.ref_count > 1 && !is_cached(block)) {
      return fail("block ", block, " is shared by ", b.ref_count, " owners but is not cached");
    }
    if (!is_cached(block)) continue;
    ++num_cached;
    auto it = index_.find(ContentKey{b.parent, StoredTokens(block)});
    if (it == index_.end() || it->second != block) {
      return fail("cached block ", block, " is not indexed under its own content");
    }
  }
  if (num_cached != static_cast<int32_t>(index_.size())) {
    return fail(index_.size(), " index entries for ", num_cached, " cached blocks");
  }
  return absl::OkStatus();
}

}  // namespace mlkv
