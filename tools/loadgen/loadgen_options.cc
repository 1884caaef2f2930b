// Flag parsing and validation for mlkv-loadgen; see loadgen_options.h.
#include "tools/loadgen/loadgen_options.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/flags.h"
#include "common/status_macros.h"

namespace mlkv::loadgen {

const char kLoadgenUsage[] =
    R"(usage: mlkv-loadgen --target HOST:PORT (--concurrency N | --request-rate R)
                    (--num-requests N | --duration-seconds S) [FLAGS]

Sends generation requests to one mlkv-server and reports latency and throughput. It stops by
itself and sends only to --target.

load (a comma-separated list sweeps: one summary per point, the same requests at each):
  --concurrency N[,N...]     closed loop: N requests in flight at all times
  --request-rate R[,R...]    open loop: R requests/s (inf: all at once)
  --arrival poisson|gamma    open-loop arrivals (poisson); gamma takes --burstiness B
  --burstiness B             gamma shape (1): < 1 burstier, > 1 more regular than Poisson
bounds (per point; at least one; with both, whichever comes first):
  --num-requests N           measured requests
  --duration-seconds S       stop sending after S seconds (requests in flight are awaited)
  --warmup-requests N        sent before each point at its load and not measured (0)
requests:
  --input-len D              prompt tokens (128); D is N, uniform:A:B, normal:MEAN:STD or
                             lognormal:MEAN:SIGMA
  --output-len D             tokens to generate (128), same forms
  --trace FILE.jsonl         instead of the lengths: one request a line, {"prompt": "text"} or
                             {"prompt_len": N}, and {"output_len": M}; replayed in order
  --shared-prefix-count N    prompts begin with one of N shared prefixes (taken in turn) ...
  --shared-prefix-len L      ... of L tokens, followed by the prompt's own tokens
  --ignore-eos               generate exactly the output length, past EOS (the default)
  --no-ignore-eos            stop at EOS
  --vocab-size V             prompt token ids are drawn from [0, V) (the model's vocabulary)
  --seed S                   seed of prompts, lengths and arrivals (0)
  --api native|kserve        the native mlkv.v1 API (default) or KServe v2 ModelStreamInfer
  --model-name NAME          KServe: the model to call (the server's own, from GetModelInfo)
  --request-timeout-seconds S  deadline of each request (600)
  --connect-timeout-seconds S  how long to wait for the server at start (10)
results:
  --summary-json FILE        {"points": [...]}: one summary per sweep point
  --summary-csv FILE         one row per sweep point
  --requests-jsonl FILE      one line per measured request
  --slo-ttft-ms T, --slo-itl-ms T, --slo-e2e-ms T
                             goodput counts the requests within every threshold given
  --quiet                    no progress line on stderr
)";

namespace {

constexpr int64_t kMaxCount = int64_t{1} << 40;

absl::Status FlagError(const std::string& message) { return absl::InvalidArgumentError(message); }

// A comma-separated list of request rates: positive numbers or "inf".
absl::StatusOr<std::vector<double>> ParseRates(const std::string& text) {
  std::vector<double> rates;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    double rate = 0;
    if (part == "inf") {
      rate = std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(part, &rate) || !std::isfinite(rate) || rate <= 0) {
      return FlagError(
          absl::StrCat("--request-rate: each rate must be a positive number or inf, "
                       "got \"",
                       part, "\""));
    }
    rates.push_back(rate);
  }
  return rates;
}

absl::StatusOr<std::optional<double>> OptionalMs(const cli::Flags& flags, const std::string& name) {
  if (!flags.Has(name)) return std::optional<double>();
  ASSIGN_OR_RETURN(double v, flags.Double(name, 0, 0, 1e12));
  return std::optional<double>(v);
}

absl::Status ParseLoad(const cli::Flags& flags, LoadgenOptions* o) {
  const bool closed = flags.Has("concurrency"), open = flags.Has("request-rate");
  if (closed == open) {
    return FlagError(closed ? "--concurrency and --request-rate exclude each other: a closed or an "
                              "open loop"
                            : "give --concurrency N (closed loop) or --request-rate R (open loop)");
  }
  if (closed) {
    if (flags.Has("arrival") || flags.Has("burstiness")) {
      return FlagError(
          "--arrival and --burstiness shape open-loop arrivals; a closed loop "
          "(--concurrency) sends when a request ends");
    }
    ASSIGN_OR_RETURN(auto levels, flags.IntList("concurrency", 1, 1 << 20));
    for (int64_t c : levels) o->points.push_back({LoadPoint::Mode::kClosedLoop, c, 0});
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auto rates, ParseRates(flags.String("request-rate", "")));
  for (double r : rates) o->points.push_back({LoadPoint::Mode::kOpenLoop, 0, r});
  const std::string arrival = flags.String("arrival", "poisson");
  if (arrival != "poisson" && arrival != "gamma") {
    return FlagError(absl::StrCat("--arrival: must be poisson or gamma, got \"", arrival, "\""));
  }
  if (arrival == "poisson" && flags.Has("burstiness")) {
    return FlagError("--burstiness needs --arrival gamma (Poisson arrivals have burstiness 1)");
  }
  ASSIGN_OR_RETURN(o->burstiness, flags.Double("burstiness", 1.0, 1e-3, 1e3));
  return absl::OkStatus();
}

absl::Status ParseRequests(const cli::Flags& flags, LoadgenOptions* o) {
  o->trace_path = flags.String("trace", "");
  if (flags.Has("trace") && (flags.Has("input-len") || flags.Has("output-len"))) {
    return FlagError("--trace gives every request's lengths: drop --input-len and --output-len");
  }
  ASSIGN_OR_RETURN(o->input_len,
                   LengthDistribution::Parse("input-len", flags.String("input-len", "128")));
  ASSIGN_OR_RETURN(o->output_len,
                   LengthDistribution::Parse("output-len", flags.String("output-len", "128")));
  if (flags.Has("shared-prefix-count") != flags.Has("shared-prefix-len")) {
    return FlagError("--shared-prefix-count and --shared-prefix-len go together");
  }
  ASSIGN_OR_RETURN(o->shared_prefix_count, flags.Int("shared-prefix-count", 0, 1, 1 << 20));
  ASSIGN_OR_RETURN(o->shared_prefix_len,
                   flags.Int("shared-prefix-len", 0, 1, LengthDistribution::kMaxLength));
  if (flags.Switch("ignore-eos") && flags.Switch("no-ignore-eos")) {
    return FlagError("--ignore-eos and --no-ignore-eos exclude each other");
  }
  o->ignore_eos = !flags.Switch("no-ignore-eos");
  if (flags.Has("vocab-size")) {
    ASSIGN_OR_RETURN(o->vocab_size, flags.Int("vocab-size", 0, 1, 1 << 30));
  }
  ASSIGN_OR_RETURN(int64_t seed, flags.Int("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  o->seed = static_cast<uint64_t>(seed);
  const std::string api = flags.String("api", "native");
  if (api != "native" && api != "kserve") {
    return FlagError(absl::StrCat("--api: must be native or kserve, got \"", api, "\""));
  }
  o->api = api == "native" ? Api::kNative : Api::kKserve;
  o->model_name = flags.String("model-name", "");
  if (o->api == Api::kNative && flags.Has("model-name")) {
    return FlagError("--model-name names the KServe model; the native API serves one model");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadgenOptions> ParseLoadgenOptions(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(cli::Flags flags,
                   cli::Flags::Parse(args,
                                     {"target",
                                      "api",
                                      "model-name",
                                      "concurrency",
                                      "request-rate",
                                      "arrival",
                                      "burstiness",
                                      "num-requests",
                                      "duration-seconds",
                                      "warmup-requests",
                                      "input-len",
                                      "output-len",
                                      "trace",
                                      "shared-prefix-count",
                                      "shared-prefix-len",
                                      "vocab-size",
                                      "seed",
                                      "request-timeout-seconds",
                                      "connect-timeout-seconds",
                                      "summary-json",
                                      "summary-csv",
                                      "requests-jsonl",
                                      "slo-ttft-ms",
                                      "slo-itl-ms",
                                      "slo-e2e-ms"},
                                     {"help", "ignore-eos", "no-ignore-eos", "quiet"}));
  LoadgenOptions o;
  if (flags.Switch("help")) {
    o.help = true;
    return o;
  }
  ASSIGN_OR_RETURN(o.target, flags.RequiredString("target"));
  RETURN_IF_ERROR(ParseLoad(flags, &o));
  if (!flags.Has("num-requests") && !flags.Has("duration-seconds")) {
    return FlagError("give --num-requests N and/or --duration-seconds S: a run must end");
  }
  if (flags.Has("num-requests")) {
    ASSIGN_OR_RETURN(o.num_requests, flags.Int("num-requests", 0, 1, kMaxCount));
  }
  if (flags.Has("duration-seconds")) {
    ASSIGN_OR_RETURN(o.duration_s, flags.Double("duration-seconds", 0, 1e-3, 1e9));
  }
  ASSIGN_OR_RETURN(o.warmup_requests, flags.Int("warmup-requests", 0, 0, kMaxCount));
  RETURN_IF_ERROR(ParseRequests(flags, &o));
  o.summary_json = flags.String("summary-json", "");
  o.summary_csv = flags.String("summary-csv", "");
  o.requests_jsonl = flags.String("requests-jsonl", "");
  ASSIGN_OR_RETURN(o.slo.ttft_ms, OptionalMs(flags, "slo-ttft-ms"));
  ASSIGN_OR_RETURN(o.slo.itl_ms, OptionalMs(flags, "slo-itl-ms"));
  ASSIGN_OR_RETURN(o.slo.e2e_ms, OptionalMs(flags, "slo-e2e-ms"));
  ASSIGN_OR_RETURN(o.request_timeout_s, flags.Double("request-timeout-seconds", 600, 1e-3, 1e7));
  ASSIGN_OR_RETURN(o.connect_timeout_s, flags.Double("connect-timeout-seconds", 10, 0, 1e6));
  o.quiet = flags.Switch("quiet");
  return o;
}

}  // namespace mlkv::loadgen
