// Encode throughput of the tokenizer (MB of UTF-8 input per second, one thread unless --threads),
// on whole files, on their lines one by one (prompt-sized calls), and on a JSON-lines corpus.
// bench/tokenizer_bench_hf.py runs this and Hugging Face tokenizers side by side.
//
//   tokenizer_bench --tokenizer FILE [--text-file FILE] [--jsonl FILE] [--repeat 5]
//                   [--threads 1] [--json OUT]
//
// "cold" is the first pass of a freshly loaded tokenizer (empty word cache); "warm" the best of
// --repeat passes after it, as a server sees after its first requests.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "cli/flags.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"

namespace mlkv {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::vector<std::string>> ReadJsonLines(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    auto value = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (!value.is_string()) return absl::InvalidArgumentError(path + ": a line is not a string");
    out.push_back(value.get<std::string>());
  }
  return out;
}

struct Workload {
  std::string name;
  std::vector<std::string> texts;
  size_t bytes = 0;
  size_t tokens = 0;
  double cold_mbs = 0, warm_mbs = 0;
};

// Encodes every text once in `threads` threads (text i in thread i % threads); seconds taken.
double EncodeAll(const Tokenizer& tokenizer, const Workload& w, int threads, size_t* tokens) {
  std::vector<size_t> counts(threads, 0);
  const auto start = Clock::now();
  auto work = [&](int t) {
    for (size_t i = t; i < w.texts.size(); i += threads) {
      counts[t] += tokenizer.Encode(w.texts[i])->size();
    }
  };
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
    for (auto& thread : pool) thread.join();
  }
  const double seconds = Seconds(start);
  *tokens = 0;
  for (size_t c : counts) *tokens += c;
  return seconds;
}

absl::Status Run(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(cli::Flags flags, cli::Flags::Parse(args, {"tokenizer", "text-file", "jsonl",
                                                              "repeat", "threads", "json"}));
  if (cli::PrintUsageIfAsked(flags, "tokenizer_bench")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string path, flags.RequiredString("tokenizer"));
  ASSIGN_OR_RETURN(int64_t repeat, flags.Int("repeat", 5, 1, 1000));
  ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads", 1, 1, 256));
  std::vector<Workload> workloads;
  if (flags.Has("text-file")) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(flags.String("text-file", "")));
    Workload lines{"lines"};
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      lines.texts.emplace_back(line);
    }
    workloads.push_back({"whole file", {text}});
    workloads.push_back(std::move(lines));
  }
  if (flags.Has("jsonl")) {
    ASSIGN_OR_RETURN(std::vector<std::string> corpus, ReadJsonLines(flags.String("jsonl", "")));
    workloads.push_back({"corpus", std::move(corpus)});
  }
  if (workloads.empty()) return absl::InvalidArgumentError("give --text-file and/or --jsonl");

  const auto load_start = Clock::now();
  ASSIGN_OR_RETURN(auto probe, Tokenizer::FromFile(path));
  const double load_seconds = Seconds(load_start);
  std::printf("tokenizer %s: loaded in %.1f ms; %lld thread(s)\n", path.c_str(), load_seconds * 1e3,
              (long long)threads);
  std::printf("%-12s %10s %10s %9s %12s %12s\n", "workload", "texts", "MB", "tokens", "cold MB/s",
              "warm MB/s");
  nlohmann::json out = {{"load_ms", load_seconds * 1e3}, {"threads", threads}};
  for (Workload& w : workloads) {
    for (const auto& t : w.texts) w.bytes += t.size();
    // Cold: a fresh tokenizer, so the word cache starts empty.
    ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromFile(path));
    w.cold_mbs = w.bytes / EncodeAll(*tokenizer, w, threads, &w.tokens) / 1e6;
    double best = 1e30;
    for (int64_t r = 0; r < repeat; ++r) {
      best = std::min(best, EncodeAll(*tokenizer, w, threads, &w.tokens));
    }
    w.warm_mbs = w.bytes / best / 1e6;
    std::printf("%-12s %10zu %10.3f %9zu %12.2f %12.2f\n", w.name.c_str(), w.texts.size(),
                w.bytes / 1e6, w.tokens, w.cold_mbs, w.warm_mbs);
    out["workloads"][w.name] = {{"texts", w.texts.size()},
                                {"bytes", w.bytes},
                                {"tokens", w.tokens},
                                {"cold_mbs", w.cold_mbs},
                                {"warm_mbs", w.warm_mbs}};
  }
  if (flags.Has("json")) {
    std::ofstream(flags.String("json", "")) << out.dump(2) << "\n";
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace mlkv

int main(int argc, char** argv) {
  const absl::Status status = mlkv::Run(std::vector<std::string>(argv + 1, argv + argc));
  if (!status.ok()) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
