// Tests against the real GPT-NeoX-20B tokenizer.json from ../shared/data (skipped without it):
// ids Hugging Face tokenizers 0.15 gives, streaming over real multi-byte tokens, and concurrent
// encoding of real text. The full comparison with Hugging Face is tests/conformance.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {
namespace {

using Ids = std::vector<int32_t>;

std::string SharedDir() {
  const char* env = std::getenv("MLKV_SHARED_DIR");
  return env != nullptr && *env != '\0' ? env : MLKV_DEFAULT_SHARED_DIR;
}

class NeoxTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = SharedDir() + "/data/gpt-neox-20b/tokenizer.json";
    if (!std::filesystem::exists(path)) return;
    auto loaded = Tokenizer::FromFile(path);
    if (!loaded.ok()) {
      load_error_ = new absl::Status(loaded.status());
      return;
    }
    tokenizer_ = loaded->release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
    delete load_error_;
    load_error_ = nullptr;
  }
  void SetUp() override {
    // A file that is there but does not load is a failure of every test, not a skip.
    if (load_error_ != nullptr) FAIL() << *load_error_;
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "no " << SharedDir() << "/data/gpt-neox-20b/tokenizer.json";
    }
  }
  static Ids Encode(std::string_view text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : Ids{};
  }

  static const Tokenizer* tokenizer_;
  static const absl::Status* load_error_;
};

const Tokenizer* NeoxTokenizerTest::tokenizer_ = nullptr;
const absl::Status* NeoxTokenizerTest::load_error_ = nullptr;

TEST_F(NeoxTokenizerTest, MatchesHuggingFaceOnKnownStrings) {
  // From tokenizers 0.15.2: Tokenizer.from_file(...).encode(text).ids
  EXPECT_EQ(tokenizer_->vocab_size(), 50277);
  EXPECT_EQ(Encode("hello world"), (Ids{25521, 1533}));
  EXPECT_EQ(Encode("a  b"), (Ids{66, 50276, 67}));
  EXPECT_EQ(Encode("a   \n  b"), (Ids{66, 50275, 187, 50276, 67}));
  EXPECT_EQ(Encode(" \xC2\xA0x"), (Ids{209, 575, 89}));
  EXPECT_EQ(Encode("x<|endoftext|>y"), (Ids{89, 0, 90}));
  EXPECT_EQ(Encode(""), Ids{});
  EXPECT_EQ(Encode("   "), (Ids{50275}));
  EXPECT_EQ(Encode("don't I'LL"), (Ids{9903, 626, 309, 8, 2293}));
  EXPECT_EQ(Encode("\xC3\xA9 e\xCC\x81"), (Ids{860, 3974}));
  EXPECT_EQ(Encode("a\xE3\x80\x80\xE3\x80\x80"
                   "b"),
            (Ids{66, 19409, 19409, 67}));
  EXPECT_EQ(Encode("1234567"), (Ids{42594, 2251}));
}

TEST_F(NeoxTokenizerTest, StreamsRealTokensThatSplitCharacters) {
  const std::string text =
      "Emoji \xF0\x9F\x98\x80\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F"
      "\x91\xA7 and \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E, caf\xC3\xA9, \xE0\xA4\xB9\xE0\xA4\xBF"
      "\xE0\xA4\x82\xE0\xA4\xA6\xE0\xA5\x80 <|endoftext|>";
  const Ids ids = Encode(text);
  IncrementalDecoder decoder(tokenizer_);
  std::string streamed;
  for (int32_t id : ids) streamed += *decoder.Add(id);
  streamed += decoder.Flush();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(*tokenizer_->Decode(ids), text);
}

TEST_F(NeoxTokenizerTest, EncodesFromManyThreadsAsFromOne) {
  std::ifstream in(SharedDir() + "/data/tinyshakespeare/input.txt");
  if (!in) GTEST_SKIP() << "no tinyshakespeare/input.txt";
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line) && lines.size() < 4000;) lines.push_back(line);
  std::vector<Ids> expected;
  for (const std::string& line : lines) expected.push_back(Encode(line));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < lines.size() * 2; i += 3) {
        const size_t k = i % lines.size();
        auto ids = tokenizer_->Encode(lines[k]);
        if (!ids.ok() || *ids != expected[k]) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace mlkv
