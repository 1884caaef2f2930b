// Parsing mlkv-server's flags; see server_flags.h.
#include "server/server_flags.h"

#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "server/tls_options.h"

namespace mlkv::server {
namespace {

// A file flag's error starts with the flag: the operator sees what to fix.
template <typename T>
absl::StatusOr<T> ForFlag(absl::string_view flag, absl::StatusOr<T> value) {
  if (value.ok()) return value;
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", value.status().message()));
}

// --tls-*-file: read and checked here, so that a bad file stops the server before the model
// loads rather than at the first handshake.
absl::StatusOr<TlsOptions> ParseTlsFlags(const cli::Flags& f) {
  TlsOptions tls;
  if (f.Has("tls-cert-file") != f.Has("tls-key-file")) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file: give both or neither");
  }
  if (!f.Has("tls-cert-file")) {
    if (f.Has("tls-client-ca-file")) {
      return absl::InvalidArgumentError(
          "--tls-client-ca-file: needs --tls-cert-file and --tls-key-file");
    }
    return tls;
  }
  ASSIGN_OR_RETURN(tls.cert_chain_pem,
                   ForFlag("tls-cert-file", ReadPemCertificates(f.String("tls-cert-file", ""))));
  ASSIGN_OR_RETURN(tls.private_key_pem,
                   ForFlag("tls-key-file", ReadPemPrivateKey(f.String("tls-key-file", ""))));
  if (absl::Status match = CheckKeyMatchesCertificate(tls.private_key_pem, tls.cert_chain_pem);
      !match.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key-file, --tls-cert-file: ", match.message()));
  }
  if (f.Has("tls-client-ca-file")) {
    ASSIGN_OR_RETURN(
        tls.client_ca_pem,
        ForFlag("tls-client-ca-file", ReadPemCertificates(f.String("tls-client-ca-file", ""))));
  }
  return tls;
}

}  // namespace

const char kServerUsage[] = R"(usage: mlkv-server --model DIR [FLAGS]

Serves a GPT-NeoX/MLKV model over gRPC: the native API mlkv.v1.MlkvService and KServe v2
inference.GRPCInferenceService (docs/api.md), grpc.health.v1 and server reflection. SIGTERM or SIGINT: health turns NOT_SERVING, new requests
get UNAVAILABLE, running ones finish within --shutdown-grace-seconds, then the server exits 0.

server:
  --model DIR                  the model directory (config.json, model.safetensors); required
  --served-model-name NAME     the name GetModelInfo reports (default: the directory's name)
  --host ADDR                  address to listen on (127.0.0.1; 0.0.0.0 for every interface)
  --port N                     port to listen on (50051; 0: any free port, logged)
  --shutdown-grace-seconds S   how long a drain waits for running requests (30)
  --max-waiting N              queued requests at most; beyond, RESOURCE_EXHAUSTED (4096)
  --max-message-bytes N        largest request message; beyond, RESOURCE_EXHAUSTED (4194304)
  --max-concurrent-streams N   calls at once per client connection (0: no limit)
  --keepalive-time-seconds S   ping idle connections this often (0: gRPC's 2 hours)
  --keepalive-timeout-seconds S  close a connection whose ping is not answered in S (0: 20)

security (docs/api.md, "TLS and API keys"):
  --tls-cert-file FILE         serve TLS with this PEM certificate chain (with --tls-key-file)
  --tls-key-file FILE          the certificate's unencrypted PEM private key
  --tls-client-ca-file FILE    mutual TLS: require client certificates signed by these PEM CAs
  --api-keys-file FILE         require 'authorization: Bearer <key>' with a key from FILE (one
                               per line; blank lines and # comments skipped); health stays open

metrics (docs/api.md, "Metrics"):
  --metrics-port N             Prometheus GET /metrics over HTTP on --host (8002; 0: any free
                               port, logged)
  --no-metrics                 serve no metrics

engine:
  --kv-cache-bytes B | --kv-cache-fraction F [--memory-limit-bytes M]
                               KV budget (default: --kv-cache-bytes 1073741824); the fraction
                               is of the memory (M, else the GPU's free memory or the host's)
                               left after the weights and the activation workspace
  --max-model-len N            longest prompt + output (the model's max_position_embeddings)
  --block-size N (16)  --kv-dtype f32|f16|bf16 (f32)  --threads N (all cores)
  --weight-dtype f32|f16|bf16 (f32)  how weight matrices and embeddings are held: 16-bit
                               halves their memory (the GPU also runs the GEMMs on tensor cores)
  --max-num-seqs N (256)       sequences running at once
  --max-num-batched-tokens N (2048)  tokens computed per engine step
  --prefill-chunk N            most prompt tokens of one sequence per step (0: no limit)
  --no-prefix-caching          do not reuse the KV blocks of earlier prompts
  --cuda-graphs                decode steps replay captured CUDA graphs (one launch per step;
                               needs the CUDA backend; off until measured on a GPU)
  --cuda-attention simt|tensor-core (simt)
                               the CUDA attention kernel: tensor-core serves f16/bf16 KV
                               caches of head_dim 64/80/96/128 (others stay SIMT); SIMT until
                               measured on a GPU
  --tokenizer FILE             text prompts, output text, stop strings, Tokenize (default:
                               the model directory's tokenizer.json if any, else ids only)
  --device cpu|cuda            where the model runs (default: cuda when this build has the
                               CUDA backend and a GPU is visible, else cpu)
  --sampling-placement auto|backend|host
                               where sampled requests without penalties or logprobs draw: on
                               the backend (only token ids leave a GPU) or on the host; auto:
                               the host until the GPU kernel is verified
)";

absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args) {
  ServerFlags out;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      return out;
    }
  }
  const std::set<std::string> allowed =
      cli::Union({cli::kModelFlags,
                  {"host", "port", "served-model-name", "shutdown-grace-seconds", "max-waiting",
                   "max-message-bytes", "max-concurrent-streams", "keepalive-time-seconds",
                   "keepalive-timeout-seconds", "tls-cert-file", "tls-key-file",
                   "tls-client-ca-file", "api-keys-file", "metrics-port", "no-metrics"}});
  const std::set<std::string> switches = cli::Union({cli::kModelSwitches, {"no-metrics"}});
  std::vector<std::string> all = args;
  ASSIGN_OR_RETURN(cli::Flags given, cli::Flags::Parse(all, allowed, switches));
  if (!given.Has("kv-cache-bytes") && !given.Has("kv-cache-fraction")) {
    all.push_back(absl::StrCat("--kv-cache-bytes=", kDefaultKvCacheBytes));
  }
  ASSIGN_OR_RETURN(out.flags, cli::Flags::Parse(all, allowed, switches));
  const cli::Flags& f = out.flags;

  ASSIGN_OR_RETURN(out.model_dir, f.RequiredString("model"));
  std::string default_name =
      std::filesystem::path(out.model_dir).lexically_normal().filename().string();
  if (default_name.empty()) {  // "dir/" normalises to a path with an empty file name
    default_name =
        std::filesystem::path(out.model_dir).lexically_normal().parent_path().filename().string();
  }
  out.served_model_name = f.String("served-model-name", default_name);
  if (out.served_model_name.empty()) {
    return absl::InvalidArgumentError("--served-model-name: must not be empty");
  }
  out.server.host = f.String("host", "127.0.0.1");
  if (out.server.host.empty()) return absl::InvalidArgumentError("--host: must not be empty");
  ASSIGN_OR_RETURN(int64_t port, f.Int("port", 50051, 0, 65535));
  out.server.port = static_cast<int>(port);
  ASSIGN_OR_RETURN(double grace, f.Double("shutdown-grace-seconds", 30.0, 0.0, 86400.0));
  out.shutdown_grace = absl::Seconds(grace);
  ASSIGN_OR_RETURN(int64_t max_waiting,
                   f.Int("max-waiting", 4096, 1, std::numeric_limits<int32_t>::max()));
  out.max_waiting = static_cast<int32_t>(max_waiting);
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  ASSIGN_OR_RETURN(int64_t message_bytes, f.Int("max-message-bytes", 4 << 20, 1, kIntMax));
  out.server.max_receive_message_bytes = static_cast<int>(message_bytes);
  ASSIGN_OR_RETURN(int64_t streams, f.Int("max-concurrent-streams", 0, 0, kIntMax));
  out.server.max_concurrent_streams = static_cast<int>(streams);
  // Seconds, kept within what gRPC's int milliseconds can hold.
  ASSIGN_OR_RETURN(int64_t keepalive, f.Int("keepalive-time-seconds", 0, 0, kIntMax / 1000));
  out.server.keepalive_time_seconds = static_cast<int>(keepalive);
  ASSIGN_OR_RETURN(int64_t keepalive_timeout,
                   f.Int("keepalive-timeout-seconds", 0, 0, kIntMax / 1000));
  out.server.keepalive_timeout_seconds = static_cast<int>(keepalive_timeout);

  ASSIGN_OR_RETURN(out.server.tls, ParseTlsFlags(f));
  if (f.Has("api-keys-file")) {
    ASSIGN_OR_RETURN(out.server.auth,
                     ForFlag("api-keys-file", ApiKeyAuth::FromFile(f.String("api-keys-file", ""))));
  }
  ASSIGN_OR_RETURN(int64_t metrics_port, f.Int("metrics-port", kDefaultMetricsPort, 0, 65535));
  if (f.Switch("no-metrics")) {
    if (f.Has("metrics-port")) {
      return absl::InvalidArgumentError("--no-metrics: contradicts --metrics-port");
    }
  } else if (metrics_port != 0 && metrics_port == out.server.port) {
    return absl::InvalidArgumentError("--metrics-port: must differ from --port");
  } else {
    out.metrics_port = static_cast<int>(metrics_port);
  }
  return out;
}

}  // namespace mlkv::server
