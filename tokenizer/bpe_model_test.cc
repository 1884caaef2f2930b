// Tests of BPE merging: known results, and that the scan and heap algorithms agree on random
// vocabularies and words (they must, since the choice between them is only about speed).
#include "tokenizer/bpe_model.h"

#include <random>

#include "gtest/gtest.h"
#include "tokenizer/byte_level.h"

namespace mlkv {
namespace {

using byte_level::BytesToToken;

// A byte vocabulary plus the given merges (raw byte strings), ids in order.
std::unique_ptr<BpeModel> MakeModel(
    const std::vector<std::pair<std::string, std::string>>& merges) {
  BpeModel::Vocab vocab;
  for (int b = 0; b < 256; ++b) vocab[BytesToToken(std::string(1, char(b)))] = b;
  BpeModel::MergeList list;
  for (const auto& [left, right] : merges) {
    vocab.try_emplace(BytesToToken(left + right), static_cast<int32_t>(vocab.size()));
    list.emplace_back(BytesToToken(left), BytesToToken(right));
  }
  auto model = BpeModel::Create(std::move(vocab), list);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

std::vector<int32_t> Ids(const BpeModel& model, std::string_view word) {
  std::vector<int32_t> ids;
  model.EncodeWord(word, &ids);
  return ids;
}

int32_t IdOf(const BpeModel& model, std::string_view bytes) {
  return model.vocab().at(BytesToToken(bytes));
}

TEST(BpeModelTest, MergesByRankNotPosition) {
  // "bc" outranks "ab", so "abc" becomes a + bc even though "ab" is further left.
  auto model = MakeModel({{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(Ids(*model, "abc"), (std::vector<int32_t>{'a', IdOf(*model, "bc")}));
  EXPECT_EQ(Ids(*model, "abab"), (std::vector<int32_t>{IdOf(*model, "ab"), IdOf(*model, "ab")}));
  EXPECT_EQ(Ids(*model, "x"), (std::vector<int32_t>{'x'}));
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  auto model = MakeModel({{"a", "a"}});
  // "aaa": the leftmost pair merges first, leaving "aa" + "a".
  EXPECT_EQ(Ids(*model, "aaa"), (std::vector<int32_t>{IdOf(*model, "aa"), 'a'}));
}

TEST(BpeModelTest, CachedAndUncachedResultsAgree) {
  auto model = MakeModel({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}});
  const std::vector<int32_t> first = Ids(*model, "hello");
  EXPECT_EQ(first, (std::vector<int32_t>{IdOf(*model, "hello")}));
  EXPECT_EQ(Ids(*model, "hello"), first);  // now from the cache
}

TEST(BpeModelTest, ScanAndHeapAgreeOnRandomMerges) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 20; ++trial) {
    // Random merges over a 4-letter alphabet, built bottom-up so every part exists.
    std::vector<std::string> tokens = {"a", "b", "c", "d"};
    std::vector<std::pair<std::string, std::string>> merges;
    for (int m = 0; m < 60; ++m) {
      const std::string& left = tokens[rng() % tokens.size()];
      const std::string& right = tokens[rng() % tokens.size()];
      if (left.size() + right.size() > 8) continue;
      merges.emplace_back(left, right);
      tokens.push_back(left + right);
    }
    auto model = MakeModel(merges);
    for (int w = 0; w < 200; ++w) {
      std::string word(1 + rng() % 150, 'a');
      for (char& c : word) c = "abcd"[rng() % 4];
      std::vector<int32_t> scan, heap;
      model->MergeByScan(word, &scan);
      model->MergeByHeap(word, &heap);
      ASSERT_EQ(scan, heap) << "word " << word;
    }
  }
}

TEST(BpeModelTest, LongWordsUseTheHeap) {
  auto model = MakeModel({{"a", "a"}, {"aa", "aa"}});
  const std::string word(100001, 'a');
  const std::vector<int32_t> ids = Ids(*model, word);
  ASSERT_EQ(ids.size(), 25001u);  // 25000 x "aaaa" and one "a"
  EXPECT_EQ(ids.front(), IdOf(*model, "aaaa"));
  EXPECT_EQ(ids.back(), 'a');
}

}  // namespace
}  // namespace mlkv
