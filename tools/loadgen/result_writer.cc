// Summary and per-request result files; see result_writer.h.
#include "tools/loadgen/result_writer.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace mlkv::loadgen {
namespace {

constexpr const char* kLatencies[] = {"ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"};
constexpr const char* kStats[] = {"mean", "p50", "p90", "p99", "max"};
// The scalar columns of the CSV, in order; latency columns follow.
constexpr const char* kScalars[] = {"mode",
                                    "concurrency",
                                    "request_rate",
                                    "completed",
                                    "failed",
                                    "duration_s",
                                    "requests_per_s",
                                    "input_tokens_per_s",
                                    "output_tokens_per_s",
                                    "goodput",
                                    "slo_attainment",
                                    "input_tokens",
                                    "output_tokens",
                                    "expected_output_tokens",
                                    "cached_prompt_tokens"};

nlohmann::json LatencyJson(const std::optional<LatencyStats>& s) {
  if (!s.has_value()) return nullptr;
  return {{"mean", s->mean}, {"p50", s->p50}, {"p90", s->p90}, {"p99", s->p99}, {"max", s->max}};
}

nlohmann::json OptionalNumber(std::optional<double> v) {
  return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json LoadJson(const LoadPoint& point) {
  const bool closed = point.mode == LoadPoint::Mode::kClosedLoop;
  nlohmann::json rate =
      std::isinf(point.request_rate) ? nlohmann::json("inf") : nlohmann::json(point.request_rate);
  return {{"mode", closed ? "closed_loop" : "open_loop"},
          {"concurrency", closed ? nlohmann::json(point.concurrency) : nullptr},
          {"request_rate", closed ? nullptr : rate}};
}

// A CSV cell: numbers and strings as they are (none holds a comma); null or absent: empty.
std::string Cell(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  const nlohmann::json& v = *it;
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot be written"));
  return absl::OkStatus();
}

}  // namespace

nlohmann::json PointJson(const LoadPoint& point, const Summary& s,
                         const std::optional<std::string>& stopped_early) {
  nlohmann::json j = LoadJson(point);
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["duration_s"] = s.duration_s;
  j["requests_per_s"] = s.requests_per_s;
  j["input_tokens_per_s"] = s.input_tokens_per_s;
  j["output_tokens_per_s"] = s.output_tokens_per_s;
  j["goodput"] = s.goodput;
  j["slo_attainment"] = s.slo_attainment;
  j["input_tokens"] = s.input_tokens;
  j["output_tokens"] = s.output_tokens;
  j["expected_output_tokens"] = s.expected_output_tokens;
  j["cached_prompt_tokens"] = s.cached_prompt_tokens;
  j["ttft_ms"] = LatencyJson(s.ttft_ms);
  j["itl_ms"] = LatencyJson(s.itl_ms);
  j["tpot_ms"] = LatencyJson(s.tpot_ms);
  j["e2e_ms"] = LatencyJson(s.e2e_ms);
  j["errors_by_code"] = s.errors_by_code;
  if (stopped_early.has_value()) j["stopped_early"] = *stopped_early;
  return j;
}

std::string CsvHeader() {
  std::vector<std::string> columns(std::begin(kScalars), std::end(kScalars));
  for (const char* latency : kLatencies) {
    for (const char* stat : kStats) columns.push_back(absl::StrCat(latency, "_", stat));
  }
  return absl::StrJoin(columns, ",");
}

std::string CsvRow(const nlohmann::json& point) {
  std::vector<std::string> cells;
  for (const char* scalar : kScalars) cells.push_back(Cell(point, scalar));
  for (const char* latency : kLatencies) {
    const auto stats = point.find(latency);
    for (const char* stat : kStats) {
      cells.push_back(stats == point.end() || !stats->is_object() ? "" : Cell(*stats, stat));
    }
  }
  return absl::StrJoin(cells, ",");
}

nlohmann::json RequestJson(int64_t point_index, const LoadPoint& point, const RequestRecord& r) {
  nlohmann::json j = LoadJson(point);
  j["point"] = point_index;
  j["index"] = r.index;
  j["request_id"] = r.request_id;
  j["code"] = absl::StatusCodeToString(r.code);
  if (!r.ok()) j["error"] = r.error;
  j["prompt_tokens"] = r.prompt_tokens;
  j["cached_prompt_tokens"] = r.cached_prompt_tokens;
  j["output_tokens"] = r.output_tokens();
  j["expected_output_tokens"] = r.expected_output_tokens;
  j["start_s"] = r.start_s;
  const auto ms = [](std::optional<double> s) {
    return OptionalNumber(s.has_value() ? std::optional<double>(*s * 1e3) : std::nullopt);
  };
  j["ttft_ms"] = ms(r.ttft_s());
  j["tpot_ms"] = ms(r.tpot_s());
  j["e2e_ms"] = r.e2e_s() * 1e3;
  return j;
}

ResultWriter::ResultWriter(const LoadgenOptions& options, nlohmann::json run)
    : summary_json_(options.summary_json),
      summary_csv_(options.summary_csv),
      requests_jsonl_(options.requests_jsonl),
      summary_(std::move(run)) {
  summary_["points"] = nlohmann::json::array();
}

absl::StatusOr<ResultWriter> ResultWriter::Open(const LoadgenOptions& options, nlohmann::json run) {
  ResultWriter writer(options, std::move(run));
  if (!writer.requests_jsonl_.empty()) {
    writer.requests_.open(writer.requests_jsonl_, std::ios::trunc);
    if (!writer.requests_) {
      return absl::InvalidArgumentError(
          absl::StrCat("--requests-jsonl: ", writer.requests_jsonl_, " cannot be written"));
    }
  }
  // Written at once, empty, so that a bad path fails before any request is sent.
  RETURN_IF_ERROR(writer.WriteSummaries());
  return writer;
}

absl::Status ResultWriter::AddPoint(const LoadPoint& point, const Summary& summary,
                                    const std::vector<RequestRecord>& records,
                                    const std::optional<std::string>& stopped_early) {
  summary_["points"].push_back(PointJson(point, summary, stopped_early));
  if (requests_.is_open()) {
    for (const RequestRecord& r : records)
      requests_ << RequestJson(num_points_, point, r).dump() << "\n";
    requests_.flush();
    if (!requests_) return absl::UnavailableError(absl::StrCat(requests_jsonl_, ": write failed"));
  }
  ++num_points_;
  return WriteSummaries();
}

absl::Status ResultWriter::SetError(const std::string& error) {
  summary_["error"] = error;
  return WriteSummaries();
}

absl::Status ResultWriter::WriteSummaries() {
  if (!summary_json_.empty()) RETURN_IF_ERROR(WriteFile(summary_json_, summary_.dump(2) + "\n"));
  if (!summary_csv_.empty()) {
    std::string csv = CsvHeader() + "\n";
    for (const nlohmann::json& point : summary_["points"]) csv += CsvRow(point) + "\n";
    RETURN_IF_ERROR(WriteFile(summary_csv_, csv));
  }
  return absl::OkStatus();
}

}  // namespace mlkv::loadgen
