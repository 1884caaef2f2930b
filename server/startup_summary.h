// The one log line mlkv-server writes once it serves: what capacity it has and how it is
// exposed, so that an operator reads the effect of the flags from the log alone.
#ifndef MLKV_SERVER_STARTUP_SUMMARY_H_
#define MLKV_SERVER_STARTUP_SUMMARY_H_

#include <optional>
#include <string>

#include "mlkv/v1/mlkv.pb.h"
#include "server/mlkv_server.h"

namespace mlkv::server {

// `metrics_port`: where /metrics listens, unset when metrics are off. Pure.
std::string StartupSummary(const v1::KvCacheInfo& kv, const ServerOptions& options,
                           std::optional<int> metrics_port);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_STARTUP_SUMMARY_H_
