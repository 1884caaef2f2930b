// The latency mlkv-server adds to streamed generation, and the most concurrent streams it
// sustains. Latency: the same requests run through the engine in process (an observer
// timestamps the deltas) and through an in-process MlkvServer on loopback (generated C++ stubs
// on the callback API), alternately on the same engine and at several concurrencies, so the two
// are compared side by side in one run. --ramp instead opens bursts of N streams at once and
// reports how many end without error before the timeout.
//
//   server_overhead_bench --config FILE [--concurrency 1,4,16] [--requests 64] [--rounds 4]
//       [--prompt-len 32] [--max-tokens 32] [--threads 1] [--channels 4]
//       [--seed 0] [engine flags as for mlkv-server: --max-num-seqs, --kv-cache-bytes, ...]
//   server_overhead_bench --config FILE --ramp 100,400,1000,2000 [--prompt-len 16]
//       [--max-tokens 16] [--timeout-seconds 60] [--max-waiting 4096]
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/stream_trace.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/engine.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/random_model.h"
#include "server/generate_request.h"
#include "server/mlkv_server.h"
#include "server/model_loader.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace mlkv::bench {
namespace {

using server::MlkvServer;

// The server, the engine inside it (for the in-process runs) and stubs on `channels` separate
// connections (one HTTP/2 connection per channel: a client that opens thousands of streams
// spreads them, as a load balancer would).
struct Setup {
  ModelConfig config;
  server::RequestLimits limits;
  std::unique_ptr<MlkvServer> server;
  std::vector<std::unique_ptr<v1::MlkvService::Stub>> stubs;
};

absl::StatusOr<Setup> StartServer(const cli::Flags& flags, int64_t tokens_needed) {
  Setup setup;
  ASSIGN_OR_RETURN(setup.config,
                   ModelConfig::FromFile(flags.String("config", "configs/smoke-test.json")));
  ASSIGN_OR_RETURN(int64_t threads, flags.Int("threads", 1, 1, 1024));
  ASSIGN_OR_RETURN(int64_t channels, flags.Int("channels", 4, 1, 64));
  ASSIGN_OR_RETURN(EngineOptions options,
                   cli::EngineOptionsFromFlags(flags, setup.config, tokens_needed));
  ASSIGN_OR_RETURN(int64_t max_waiting,
                   flags.Int("max-waiting", options.scheduler.max_waiting, 1, 1 << 30));
  options.scheduler.max_waiting = static_cast<int32_t>(max_waiting);
  // Both paths run the same prompts: a prefix-cache hit on the second would favour it.
  options.scheduler.enable_prefix_caching = false;
  setup.limits = {options.scheduler.max_model_len,
                  int64_t{options.scheduler.num_blocks} * options.scheduler.block_size};
  auto backend = CreateCpuBackend(static_cast<int>(threads));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                   Model::Create(setup.config, RandomModelWeights(setup.config, 0), backend.get()));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                   Engine::Create(options, std::move(backend), std::move(model)));
  RETURN_IF_ERROR(server::WarmUp(engine.get()));
  ASSIGN_OR_RETURN(setup.server,
                   MlkvServer::Start({"127.0.0.1", 0}, {std::move(engine), options, "bench"}));
  const std::string target = absl::StrCat("127.0.0.1:", setup.server->port());
  for (int64_t i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    setup.stubs.push_back(v1::MlkvService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  return setup;
}

// `n` requests of `prompt_len` random tokens and exactly `max_tokens` sampled output tokens,
// each with its own seed: deterministic, so both paths can be checked to produce the same.
std::vector<v1::GenerateRequest> MakeRequests(int64_t n, int64_t prompt_len, int64_t max_tokens,
                                              const ModelConfig& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(1, static_cast<int32_t>(config.vocab_size - 1));
  std::vector<v1::GenerateRequest> requests(n);
  for (int64_t i = 0; i < n; ++i) {
    v1::GenerateRequest& r = requests[i];
    for (int64_t k = 0; k < prompt_len; ++k) r.add_prompt_token_ids(token(rng));
    r.set_max_tokens(static_cast<int32_t>(max_tokens));
    r.set_ignore_eos(true);
    r.set_temperature(0.8f);
    r.set_seed(seed + static_cast<uint64_t>(i));
  }
  return requests;
}

Trace RunOnEngine(const Setup& setup, const v1::GenerateRequest& request) {
  absl::StatusOr<EngineRequest> converted =
      server::ToEngineRequest(request, setup.config, setup.limits);
  if (!converted.ok()) return Trace{.status_code = static_cast<int>(converted.status().code())};
  auto observer = std::make_shared<TraceObserver>(Clock::now());
  converted->observer = observer;
  absl::StatusOr<std::string> id = setup.server->engine()->Submit(*std::move(converted));
  if (!id.ok()) return Trace{.status_code = static_cast<int>(id.status().code())};
  return observer->Wait();
}

Trace RunOnServer(const Setup& setup, const v1::GenerateRequest& request, size_t i) {
  TraceReader reader(request, std::nullopt);
  reader.Start(setup.stubs[i % setup.stubs.size()].get());
  return reader.Wait();
}

// Process CPU seconds so far (every thread: engine, gRPC, clients).
double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// What one path did over all rounds at one concurrency.
struct PathRun {
  std::vector<Trace> traces;
  double seconds = 0, cpu_seconds = 0;
  int64_t tokens = 0;
};

// Runs requests 0..n-1 from `concurrency` client threads, each taking the next request when its
// previous one has ended (a closed loop, so `concurrency` streams are open throughout), and adds
// their traces (in request order), the time and the CPU time to `out`. Returns this run's
// traces.
std::vector<Trace> ClosedLoop(int64_t concurrency, size_t n,
                              const std::function<Trace(size_t)>& run, PathRun* out) {
  std::vector<Trace> traces(n);
  std::atomic<size_t> next{0};
  const Clock::time_point start = Clock::now();
  const double cpu_start = CpuSeconds();
  std::vector<std::thread> clients;
  for (int64_t c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) traces[i] = run(i);
    });
  }
  for (std::thread& t : clients) t.join();
  out->cpu_seconds += CpuSeconds() - cpu_start;
  out->seconds += std::chrono::duration<double>(Clock::now() - start).count();
  for (const Trace& t : traces) out->tokens += static_cast<int64_t>(t.token_ids.size());
  out->traces.insert(out->traces.end(), traces.begin(), traces.end());
  return traces;
}

void PrintRow(const char* name, const StreamLatency& l, double tokens_per_second,
              double cpu_us_per_token) {
  std::printf("%-14s %9.2f %9.2f %9.2f %9.2f %9.3f %9.3f %9.0f %9.1f\n", name, l.e2e.p50, l.e2e.p99,
              l.ttft.p50, l.ttft.p99, l.itl.p50, l.itl.p99, tokens_per_second, cpu_us_per_token);
}

void PrintComparison(const PathRun& on_engine, const PathRun& on_server, int64_t equal) {
  const StreamLatency engine = Summarize(on_engine.traces);
  const StreamLatency served = Summarize(on_server.traces);
  auto rate = [](const PathRun& r) { return r.tokens / r.seconds; };
  auto cpu = [](const PathRun& r) { return 1e6 * r.cpu_seconds / r.tokens; };
  auto diff = [](Percentiles a, Percentiles b) {
    return Percentiles{a.p50 - b.p50, a.p99 - b.p99};
  };
  std::printf("%-14s %9s %9s %9s %9s %9s %9s %9s %9s\n", "path", "e2e p50", "e2e p99", "ttft p50",
              "ttft p99", "itl p50", "itl p99", "tok/s", "cpu us/tok");
  PrintRow("engine", engine, rate(on_engine), cpu(on_engine));
  PrintRow("server", served, rate(on_server), cpu(on_server));
  PrintRow(
      "server-engine",
      {diff(served.e2e, engine.e2e), diff(served.ttft, engine.ttft), diff(served.itl, engine.itl)},
      rate(on_server) - rate(on_engine), cpu(on_server) - cpu(on_engine));
  std::printf("server/engine: e2e p50 %.3fx, p99 %.3fx, tok/s %.3fx; outputs equal %lld of %zu\n",
              served.e2e.p50 / engine.e2e.p50, served.e2e.p99 / engine.e2e.p99,
              rate(on_server) / rate(on_engine), static_cast<long long>(equal),
              on_engine.traces.size());
}

absl::Status RunLatency(const cli::Flags& flags) {
  std::vector<int64_t> concurrencies = {1, 4, 16};
  if (flags.Has("concurrency")) {
    ASSIGN_OR_RETURN(concurrencies, flags.IntList("concurrency", 1, 4096));
  }
  ASSIGN_OR_RETURN(int64_t num_requests, flags.Int("requests", 64, 1, 1000000));
  ASSIGN_OR_RETURN(int64_t prompt_len, flags.Int("prompt-len", 32, 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t max_tokens, flags.Int("max-tokens", 32, 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t rounds, flags.Int("rounds", 4, 1, 1000));
  ASSIGN_OR_RETURN(int64_t seed, flags.Int("seed", 0, 0, 1 << 30));
  const int64_t most = *std::max_element(concurrencies.begin(), concurrencies.end());
  // Twice what the open streams hold: no preemption distorts the latencies.
  ASSIGN_OR_RETURN(Setup setup, StartServer(flags, 2 * most * (prompt_len + max_tokens)));
  std::printf(
      "%s: %lld requests x %lld rounds per path and concurrency, prompt %lld + output "
      "%lld tokens (sampled, seeded), engine and server runs alternating; times in ms, "
      "CPU time of the whole process (engine, server and client threads)\n",
      flags.String("config", "configs/smoke-test.json").c_str(),
      static_cast<long long>(num_requests), static_cast<long long>(rounds),
      static_cast<long long>(prompt_len), static_cast<long long>(max_tokens));
  const std::vector<v1::GenerateRequest> requests =
      MakeRequests(num_requests, prompt_len, max_tokens, setup.config, seed);
  auto on_engine = [&](size_t i) { return RunOnEngine(setup, requests[i]); };
  auto on_server = [&](size_t i) { return RunOnServer(setup, requests[i], i); };
  for (int64_t concurrency : concurrencies) {
    PathRun engine_run, server_run;
    int64_t equal = 0;
    // Short runs, alternating which path goes first, spread the machine's drifting load evenly
    // over both paths.
    for (int64_t round = 0; round < rounds; ++round) {
      std::vector<Trace> engine_traces, server_traces;
      for (int path = 0; path < 2; ++path) {
        if ((path + round) % 2 == 0) {
          engine_traces = ClosedLoop(concurrency, requests.size(), on_engine, &engine_run);
        } else {
          server_traces = ClosedLoop(concurrency, requests.size(), on_server, &server_run);
        }
      }
      for (size_t i = 0; i < requests.size(); ++i) {
        if (engine_traces[i].status_code != 0 || server_traces[i].status_code != 0) {
          return absl::InternalError(absl::StrCat("request ", i, " failed: engine code ",
                                                  engine_traces[i].status_code, ", server code ",
                                                  server_traces[i].status_code));
        }
        equal += engine_traces[i].token_ids == server_traces[i].token_ids;
      }
    }
    std::printf("\nconcurrency %lld\n", static_cast<long long>(concurrency));
    PrintComparison(engine_run, server_run, equal);
  }
  return absl::OkStatus();
}

// Opens `n` streams at once (each with the timeout as its deadline) and waits for them all.
absl::Status RunBurst(const Setup& setup, int64_t n, int64_t prompt_len, int64_t max_tokens,
                      uint64_t seed, absl::Duration timeout) {
  const std::vector<v1::GenerateRequest> requests =
      MakeRequests(n, prompt_len, max_tokens, setup.config, seed);
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  // Peak engine occupancy, sampled while the burst runs.
  std::atomic<bool> stop{false};
  int64_t peak_running = 0, peak_waiting = 0;
  std::thread sampler([&] {
    while (!stop) {
      const SchedulerStats s = setup.server->engine()->GetStats().scheduler;
      peak_running = std::max<int64_t>(peak_running, s.num_running);
      peak_waiting = std::max<int64_t>(peak_waiting, s.num_waiting);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const Clock::time_point start = Clock::now();
  std::vector<std::unique_ptr<TraceReader>> readers;
  for (int64_t i = 0; i < n; ++i) {
    readers.push_back(std::make_unique<TraceReader>(requests[i], deadline));
    readers.back()->Start(setup.stubs[i % setup.stubs.size()].get());
  }
  std::vector<Trace> traces;
  for (auto& reader : readers) traces.push_back(reader->Wait());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  sampler.join();

  std::map<int, int64_t> errors;  // by status code
  int64_t complete = 0, tokens = 0;
  for (const Trace& t : traces) {
    tokens += static_cast<int64_t>(t.token_ids.size());
    if (t.status_code == 0 && static_cast<int64_t>(t.token_ids.size()) == max_tokens) {
      ++complete;
    } else {
      ++errors[t.status_code];
    }
  }
  const StreamLatency l = Summarize(traces);
  std::printf("%6lld %9lld %7.1f%% %9.2f %9.1f %9.1f %9.1f %9.1f %8lld %8lld  %s\n",
              static_cast<long long>(n), static_cast<long long>(complete), 100.0 * complete / n,
              seconds, tokens / seconds, l.ttft.p50, l.ttft.p99, l.e2e.p99,
              static_cast<long long>(peak_running), static_cast<long long>(peak_waiting),
              complete == n ? "sustained" : "");
  for (const auto& [code, count] : errors) {
    std::printf("         %lld ended with %s\n", static_cast<long long>(count),
                code == 0 ? "too few tokens"
                          : absl::StatusCodeToString(static_cast<absl::StatusCode>(code)).c_str());
  }
  return absl::OkStatus();
}

absl::Status RunRamp(const cli::Flags& flags) {
  ASSIGN_OR_RETURN(std::vector<int64_t> levels, flags.IntList("ramp", 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t prompt_len, flags.Int("prompt-len", 16, 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t max_tokens, flags.Int("max-tokens", 16, 1, 1 << 20));
  ASSIGN_OR_RETURN(int64_t timeout, flags.Int("timeout-seconds", 60, 1, 86400));
  ASSIGN_OR_RETURN(int64_t seed, flags.Int("seed", 0, 0, 1 << 30));
  const int64_t most = *std::max_element(levels.begin(), levels.end());
  ASSIGN_OR_RETURN(Setup setup, StartServer(flags, most * (prompt_len + max_tokens)));
  std::printf(
      "%s: bursts of N streams opened at once, prompt %lld + output %lld tokens, "
      "deadline %lld s; times in ms unless marked\n",
      flags.String("config", "configs/smoke-test.json").c_str(), static_cast<long long>(prompt_len),
      static_cast<long long>(max_tokens), static_cast<long long>(timeout));
  std::printf("%6s %9s %8s %9s %9s %9s %9s %9s %8s %8s\n", "N", "complete", "rate", "wall s",
              "tok/s", "ttft p50", "ttft p99", "e2e p99", "peak run", "peak wait");
  for (size_t i = 0; i < levels.size(); ++i) {
    RETURN_IF_ERROR(RunBurst(setup, levels[i], prompt_len, max_tokens,
                             static_cast<uint64_t>(seed) + 1000003 * i, absl::Seconds(timeout)));
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  // The server logs a line per request, as in production; stdout keeps the tables.
  spdlog::set_default_logger(spdlog::stderr_color_mt("server_overhead_bench"));
  std::set<std::string> allowed =
      cli::Union({cli::kModelFlags,
                  {"config", "concurrency", "requests", "prompt-len", "max-tokens", "rounds",
                   "channels", "seed", "ramp", "timeout-seconds", "max-waiting"}});
  allowed.erase("model");  // the model is random weights of --config
  absl::StatusOr<cli::Flags> flags = cli::Flags::Parse(
      std::vector<std::string>(argv + 1, argv + argc), allowed, cli::kModelSwitches);
  if (flags.ok() && cli::PrintUsageIfAsked(*flags, "server_overhead_bench")) return 0;
  absl::Status status = flags.status();
  if (status.ok()) status = flags->Has("ramp") ? RunRamp(*flags) : RunLatency(*flags);
  if (!status.ok()) {
    std::fprintf(stderr, "server_overhead_bench: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace mlkv::bench

int main(int argc, char** argv) { return mlkv::bench::Main(argc, argv); }
