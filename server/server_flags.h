// mlkv-server's command line: its own flags (address, name, shutdown grace, queue limit) plus
// the engine flags it shares with the `mlkv` tool (cli/model_flags.h).
#ifndef MLKV_SERVER_SERVER_FLAGS_H_
#define MLKV_SERVER_SERVER_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "server/mlkv_server.h"

namespace mlkv::server {

// The KV budget when no --kv-cache-bytes or --kv-cache-fraction is given: a server has no
// known set of requests to size its cache for, and a fixed modest budget starts anywhere.
inline constexpr int64_t kDefaultKvCacheBytes = int64_t{1} << 30;

// Where Prometheus finds /metrics unless told otherwise: Triton's metrics port (8000 HTTP, 8001
// gRPC, 8002 metrics), a port Kubernetes manifests for inference servers already expose.
inline constexpr int kDefaultMetricsPort = 8002;

extern const char kServerUsage[];

struct ServerFlags {
  bool help = false;  // --help: print kServerUsage and exit; nothing else is set
  ServerOptions server;
  std::string model_dir;
  std::string served_model_name;  // default: the model directory's name
  absl::Duration shutdown_grace;
  int32_t max_waiting = 0;
  std::optional<int> metrics_port;  // unset: --no-metrics; 0: any free port
  // Every flag, for EngineFactoryOptionsFromFlags (with the default KV budget added when none
  // was given).
  cli::Flags flags;
};

// Parses argv[1:]. Errors (InvalidArgument) name the flag: an unknown flag, a missing --model,
// a value of the wrong type or out of range, a TLS or API-keys file that cannot be read or
// parsed. Engine flags are checked when the engine is made.
absl::StatusOr<ServerFlags> ParseServerFlags(const std::vector<std::string>& args);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_SERVER_FLAGS_H_
