// A listening TCP socket on host:port for the metrics endpoint. The host is resolved with
// getaddrinfo, so IPv4 and IPv6 literals (bracketed or not) and names all work as for --host.
#ifndef MLKV_SERVER_METRICS_TCP_LISTENER_H_
#define MLKV_SERVER_METRICS_TCP_LISTENER_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/metrics/unique_fd.h"

namespace mlkv::server::metrics {

struct TcpListener {
  UniqueFd fd;   // non-blocking and close-on-exec, so accept() never stalls the accepting thread
  int port = 0;  // the bound port: the one asked for, or the one the kernel chose for port 0
};

// Binds the first of the host's addresses that accepts the bind (a name may resolve to several;
// one is enough for a scrape target). Unavailable, naming host:port and the reason, when none
// does: the port is taken, the host is not a local address, or it does not resolve.
absl::StatusOr<TcpListener> ListenTcp(const std::string& host, int port);

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_TCP_LISTENER_H_
