// mlkv-loadgen's result files: the summary JSON and CSV (one entry per sweep point) and the
// per-request JSONL. Each point is written as soon as it ends, so that a run that fails half-way
// (the server went away) leaves the results it has.
#ifndef MLKV_TOOLS_LOADGEN_RESULT_WRITER_H_
#define MLKV_TOOLS_LOADGEN_RESULT_WRITER_H_

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/loadgen/loadgen_options.h"
#include "tools/loadgen/request_record.h"
#include "tools/loadgen/summary.h"

namespace mlkv::loadgen {

// One sweep point as the summary JSON holds it: the load, then every Summary field
// (latencies as {"mean", "p50", "p90", "p99", "max"} in ms, null without samples). An infinite
// request rate is written as the string "inf" (JSON has no infinity).
nlohmann::json PointJson(const LoadPoint& point, const Summary& summary,
                         const std::optional<std::string>& stopped_early);
// The CSV header, and a point's row: the scalar fields of PointJson with latencies flattened
// (ttft_ms_p50, ...).
std::string CsvHeader();
std::string CsvRow(const nlohmann::json& point);
// One line of the requests JSONL.
nlohmann::json RequestJson(int64_t point_index, const LoadPoint& point, const RequestRecord& r);

class ResultWriter {
 public:
  // `run` describes the run (target, lengths, ...) at the top of the summary JSON. Opens (and
  // truncates) the files the options name; empty names are skipped.
  static absl::StatusOr<ResultWriter> Open(const LoadgenOptions& options, nlohmann::json run);

  // Appends a point; rewrites the summaries and appends its requests.
  absl::Status AddPoint(const LoadPoint& point, const Summary& summary,
                        const std::vector<RequestRecord>& records,
                        const std::optional<std::string>& stopped_early);
  // Records why the run failed (in the summary JSON's "error") and rewrites the summaries.
  absl::Status SetError(const std::string& error);

 private:
  ResultWriter(const LoadgenOptions& options, nlohmann::json run);
  absl::Status WriteSummaries();

  std::string summary_json_, summary_csv_, requests_jsonl_;
  nlohmann::json summary_;  // run fields, "points" and maybe "error"
  std::ofstream requests_;
  int64_t num_points_ = 0;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_RESULT_WRITER_H_
