// Result files: the summary JSON's shape, the CSV's columns and the per-request lines.
#include "tools/loadgen/result_writer.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

RequestRecord Completed() {
  RequestRecord r;
  r.index = 0;
  r.request_id = "gen-1";
  r.prompt_tokens = 8;
  r.expected_output_tokens = 2;
  r.start_s = 0;
  r.chunks = {{0.1, 1}, {0.3, 1}};
  r.end_s = 0.3;
  return r;
}

TEST(ResultWriterTest, PointJsonHasTheDocumentedKeys) {
  const LoadPoint point{LoadPoint::Mode::kClosedLoop, 8, 0};
  const nlohmann::json j = PointJson(point, Summarize({Completed()}, 1.0, Slo{}), std::nullopt);
  for (const char* key :
       {"completed", "failed", "requests_per_s", "output_tokens_per_s", "input_tokens_per_s",
        "goodput", "duration_s", "errors_by_code", "concurrency", "request_rate"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* latency : {"ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"}) {
    for (const char* stat : {"mean", "p50", "p90", "p99"}) {
      EXPECT_TRUE(j[latency].contains(stat)) << latency << " " << stat;
    }
  }
  EXPECT_EQ(j["concurrency"], 8);
  EXPECT_TRUE(j["request_rate"].is_null());
  EXPECT_NEAR(j["ttft_ms"]["p50"].get<double>(), 100, 1e-9);
  EXPECT_FALSE(j.contains("stopped_early"));
}

TEST(ResultWriterTest, InfiniteRateIsTheStringInf) {
  const LoadPoint point{LoadPoint::Mode::kOpenLoop, 0, std::numeric_limits<double>::infinity()};
  const nlohmann::json j = PointJson(point, Summarize({}, 0, Slo{}), std::string("gone"));
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["ttft_ms"].is_null());
  EXPECT_EQ(j["stopped_early"], "gone");
  // A point without latencies still makes a full CSV row.
  const std::vector<std::string> header = absl::StrSplit(CsvHeader(), ',');
  const std::vector<std::string> row = absl::StrSplit(CsvRow(j), ',');
  EXPECT_EQ(row.size(), header.size());
}

TEST(ResultWriterTest, WritesEveryFileAndKeepsEarlierPoints) {
  const std::string dir = ::testing::TempDir();
  LoadgenOptions o;
  o.summary_json = dir + "/lg_summary.json";
  o.summary_csv = dir + "/lg_summary.csv";
  o.requests_jsonl = dir + "/lg_requests.jsonl";
  auto writer = ResultWriter::Open(o, {{"target", "h:1"}});
  ASSERT_TRUE(writer.ok()) << writer.status();
  // Written empty at once, so that a bad path fails before anything is sent.
  EXPECT_EQ(nlohmann::json::parse(ReadAll(o.summary_json))["points"].size(), 0u);
  RequestRecord failed = Completed();
  failed.code = absl::StatusCode::kResourceExhausted;
  failed.error = "queue full";
  for (int64_t c : {1, 4}) {
    const std::vector<RequestRecord> records = {Completed(), failed};
    const LoadPoint point{LoadPoint::Mode::kClosedLoop, c, 0};
    ASSERT_TRUE(
        writer->AddPoint(point, Summarize(records, 1.0, Slo{}), records, std::nullopt).ok());
  }
  ASSERT_TRUE(writer->SetError("boom").ok());
  const nlohmann::json summary = nlohmann::json::parse(ReadAll(o.summary_json));
  EXPECT_EQ(summary["target"], "h:1");
  EXPECT_EQ(summary["error"], "boom");
  ASSERT_EQ(summary["points"].size(), 2u);
  EXPECT_EQ(summary["points"][1]["concurrency"], 4);
  EXPECT_EQ(summary["points"][1]["errors_by_code"]["RESOURCE_EXHAUSTED"], 1);

  const std::vector<std::string> csv =
      absl::StrSplit(ReadAll(o.summary_csv), '\n', absl::SkipEmpty());
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0], CsvHeader());
  EXPECT_EQ(csv[2].substr(0, 16), "closed_loop,4,,1");

  const std::vector<std::string> lines =
      absl::StrSplit(ReadAll(o.requests_jsonl), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  const nlohmann::json second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["code"], "RESOURCE_EXHAUSTED");
  EXPECT_EQ(second["error"], "queue full");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["point"], 1);
  EXPECT_NEAR(nlohmann::json::parse(lines[0])["tpot_ms"].get<double>(), 200, 1e-9);
}

TEST(ResultWriterTest, AnUnwritablePathFailsAtOnce) {
  LoadgenOptions o;
  o.summary_json = "/nonexistent/dir/s.json";
  EXPECT_FALSE(ResultWriter::Open(o, nlohmann::json::object()).ok());
  o.summary_json.clear();
  o.requests_jsonl = "/nonexistent/dir/r.jsonl";
  auto w = ResultWriter::Open(o, nlohmann::json::object());
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("--requests-jsonl"), std::string::npos);
}

}  // namespace
}  // namespace mlkv::loadgen
