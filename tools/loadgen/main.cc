// mlkv-loadgen: measures what one mlkv-server sustains. Sends streamed generation requests at a
// fixed concurrency or request rate (or a sweep of them), and reports latency percentiles,
// throughput and goodput per point. Exit status: 0 done; 1 the server could not be reached, went
// away, or a point completed nothing (results so far are written); 2 bad flags or inputs.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "tools/loadgen/generation_client.h"
#include "tools/loadgen/kserve_client.h"
#include "tools/loadgen/loadgen_options.h"
#include "tools/loadgen/native_client.h"
#include "tools/loadgen/point_runner.h"
#include "tools/loadgen/result_writer.h"
#include "tools/loadgen/summary.h"
#include "tools/loadgen/trace.h"
#include "tools/loadgen/workload.h"

namespace mlkv::loadgen {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "mlkv-loadgen: %s\n", message.c_str());
  return code;
}

std::string PointLabel(const LoadPoint& point) {
  if (point.mode == LoadPoint::Mode::kClosedLoop)
    return absl::StrCat("concurrency ", point.concurrency);
  return absl::StrCat("rate ", point.request_rate, "/s");
}

nlohmann::json RunJson(const LoadgenOptions& o) {
  nlohmann::json slo = {{"ttft_ms", nullptr}, {"itl_ms", nullptr}, {"e2e_ms", nullptr}};
  if (o.slo.ttft_ms) slo["ttft_ms"] = *o.slo.ttft_ms;
  if (o.slo.itl_ms) slo["itl_ms"] = *o.slo.itl_ms;
  if (o.slo.e2e_ms) slo["e2e_ms"] = *o.slo.e2e_ms;
  return {{"target", o.target},
          {"api", o.api == Api::kNative ? "native" : "kserve"},
          {"input_len", o.trace_path.empty() ? nlohmann::json(o.input_len.spec()) : nullptr},
          {"output_len", o.trace_path.empty() ? nlohmann::json(o.output_len.spec()) : nullptr},
          {"trace", o.trace_path.empty() ? nullptr : nlohmann::json(o.trace_path)},
          {"shared_prefix_count", o.shared_prefix_count},
          {"shared_prefix_len", o.shared_prefix_len},
          {"ignore_eos", o.ignore_eos},
          {"warmup_requests", o.warmup_requests},
          {"seed", o.seed},
          {"slo", slo}};
}

void PrintPoint(const LoadPoint& point, const Summary& s) {
  const auto p = [](const std::optional<LatencyStats>& l, double LatencyStats::*field) {
    return l.has_value() ? absl::StrFormat("%.2f", (*l).*field) : std::string("-");
  };
  std::printf(
      "%s: %lld completed, %lld failed in %.2f s; %.2f req/s, %.1f output tok/s, "
      "goodput %.2f req/s; TTFT p50 %s p99 %s ms; ITL p50 %s p99 %s ms; E2E p50 %s p99 %s ms\n",
      PointLabel(point).c_str(), static_cast<long long>(s.completed),
      static_cast<long long>(s.failed), s.duration_s, s.requests_per_s, s.output_tokens_per_s,
      s.goodput, p(s.ttft_ms, &LatencyStats::p50).c_str(), p(s.ttft_ms, &LatencyStats::p99).c_str(),
      p(s.itl_ms, &LatencyStats::p50).c_str(), p(s.itl_ms, &LatencyStats::p99).c_str(),
      p(s.e2e_ms, &LatencyStats::p50).c_str(), p(s.e2e_ms, &LatencyStats::p99).c_str());
  std::fflush(stdout);
}

int Run(const std::vector<std::string>& args) {
  absl::StatusOr<LoadgenOptions> parsed = ParseLoadgenOptions(args);
  if (!parsed.ok()) {
    return Fail(kExitUsage, absl::StrCat(parsed.status().message(), " (see --help)"));
  }
  const LoadgenOptions& o = *parsed;
  if (o.help) {
    std::fputs(kLoadgenUsage, stdout);
    return 0;
  }
  WorkloadOptions workload_options{
      o.input_len, o.output_len, {}, o.shared_prefix_count, o.shared_prefix_len, 0, o.seed};
  if (!o.trace_path.empty()) {
    auto trace = ReadTraceFile(o.trace_path);
    if (!trace.ok()) return Fail(kExitUsage, absl::StrCat("--trace: ", trace.status().message()));
    workload_options.trace = *std::move(trace);
  }
  auto writer = ResultWriter::Open(o, RunJson(o));
  if (!writer.ok()) return Fail(kExitUsage, std::string(writer.status().message()));

  const CallOptions call{o.ignore_eos, o.request_timeout_s};
  std::unique_ptr<GenerationClient> client;
  if (o.api == Api::kNative) {
    client = std::make_unique<NativeClient>(o.target, call);
  } else {
    client = std::make_unique<KserveClient>(o.target, o.model_name, call);
  }
  absl::StatusOr<ServerInfo> info = client->Probe(o.connect_timeout_s);
  if (!info.ok()) {
    const std::string error =
        absl::StrCat("cannot reach ", o.target, ": ", info.status().ToString());
    (void)writer->SetError(error);  // the message below matters more than a failed write
    return Fail(kExitFailed, error);
  }
  workload_options.vocab_size = o.vocab_size.value_or(info->vocab_size);
  if (workload_options.vocab_size < 1) {
    return Fail(kExitUsage, "--vocab-size: the server does not say its vocabulary; give it");
  }
  if (!o.quiet) {
    std::fprintf(stderr, "mlkv-loadgen: %s serves %s (vocabulary %lld, max_model_len %lld)\n",
                 o.target.c_str(), info->model_name.c_str(),
                 static_cast<long long>(info->vocab_size),
                 static_cast<long long>(info->max_model_len));
  }

  int exit_code = 0;
  for (const LoadPoint& point : o.points) {
    // A fresh workload per point: every point sends the same requests.
    auto workload = Workload::Create(workload_options);
    if (!workload.ok()) return Fail(kExitUsage, std::string(workload.status().message()));
    const uint64_t arrival_seed = o.seed ^ 0x9e3779b97f4a7c15ULL;  // independent of the prompts
    if (o.warmup_requests > 0) {
      ProgressLine progress(!o.quiet, absl::StrCat("warm-up, ", PointLabel(point)));
      RunPhase(*client, *workload, point, o.burstiness, arrival_seed,
               {o.warmup_requests, std::nullopt}, progress);
    }
    ProgressLine progress(!o.quiet, PointLabel(point));
    PhaseResult phase = RunPhase(*client, *workload, point, o.burstiness, arrival_seed,
                                 {o.num_requests, o.duration_s}, progress);
    const Summary summary = Summarize(phase.records, phase.duration_s, o.slo);
    PrintPoint(point, summary);
    if (absl::Status s = writer->AddPoint(point, summary, phase.records, phase.stopped_early);
        !s.ok()) {
      return Fail(kExitFailed, std::string(s.message()));
    }
    if (phase.stopped_early.has_value()) {
      const std::string error = absl::StrCat(PointLabel(point), ": ", *phase.stopped_early);
      (void)writer->SetError(error);
      return Fail(kExitFailed, error);
    }
    if (summary.completed == 0) {
      exit_code = kExitFailed;
      Fail(kExitFailed, absl::StrCat(PointLabel(point), ": no request completed"));
    }
  }
  return exit_code;
}

}  // namespace
}  // namespace mlkv::loadgen

int main(int argc, char** argv) {
  return mlkv::loadgen::Run(std::vector<std::string>(argv + 1, argv + argc));
}
