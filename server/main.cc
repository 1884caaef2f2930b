// mlkv-server: loads a model, serves it over gRPC, and on SIGTERM/SIGINT drains and exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "server/metrics/engine_stats_collector.h"
#include "server/metrics/metrics_server.h"
#include "server/metrics/request_metrics.h"
#include "server/mlkv_server.h"
#include "server/model_loader.h"
#include "server/model_reports.h"
#include "server/server_flags.h"
#include "server/startup_summary.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

// Blocks SIGTERM and SIGINT in this thread and in every thread started after it (gRPC's, the
// engine's, OpenMP's), so that they wait, pending, for sigwait() in main.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "mlkv-server: %s: %s\n", what.c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mlkv::server;  // NOLINT: a main of this namespace's types
  spdlog::set_default_logger(spdlog::stderr_color_mt("mlkv-server"));
  const sigset_t stop_signals = BlockStopSignals();

  absl::StatusOr<ServerFlags> flags =
      ParseServerFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::fprintf(stderr, "mlkv-server: %s\n\n%s", std::string(flags.status().message()).c_str(),
                 kServerUsage);
    return 2;
  }
  if (flags->help) {
    std::fputs(kServerUsage, stdout);
    return 0;
  }

  auto request_metrics = std::make_shared<metrics::RequestMetrics>();
  absl::StatusOr<ServedModel> model = LoadServedModel(*flags, request_metrics);
  if (!model.ok()) return Fail("cannot start the engine", model.status());
  if (absl::Status warm = WarmUp(model->engine.get()); !warm.ok()) {
    return Fail("the model does not run", warm);
  }
  // Reported once serving; taken now, while the model's options are still at hand.
  const mlkv::v1::KvCacheInfo kv = BuildModelInfo(model->model_name, model->engine->model_config(),
                                                  model->options, model->engine->GetStats())
                                       .kv_cache();
  absl::StatusOr<std::unique_ptr<MlkvServer>> server =
      MlkvServer::Start(flags->server, *std::move(model));
  if (!server.ok()) return Fail("cannot serve", server.status());
  // Declared after the server, so destroyed first: no scrape reads the engine once it is gone.
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (flags->metrics_port) {
    auto started = metrics::MetricsServer::Start(
        flags->server.host, *flags->metrics_port,
        {std::make_shared<metrics::EngineStatsCollector>((*server)->engine()),
         request_metrics->registry()});
    if (!started.ok()) return Fail("cannot serve metrics", started.status());
    metrics_server = *std::move(started);
  }
  spdlog::info(
      "{}", StartupSummary(kv, flags->server,
                           metrics_server ? std::optional(metrics_server->port()) : std::nullopt));

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("{}: draining (grace {})", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::FormatDuration(flags->shutdown_grace));
  // A second signal during the drain stops at once, for an operator who will not wait.
  std::thread impatient([stop_signals] {
    int again = 0;
    sigwait(&stop_signals, &again);
    std::fprintf(stderr, "mlkv-server: second signal, exiting without draining\n");
    std::_Exit(1);
  });
  impatient.detach();
  (*server)->Drain(flags->shutdown_grace);
  (*server)->Shutdown();
  return 0;
}
