// Prometheus's pull endpoint: GET /metrics over HTTP/1.1 on its own port, served by one thread
// of its own (so a slow scrape never holds a gRPC or engine thread). Written here rather than
// taken from prometheus-cpp's Exposer: see docs/dependencies.md.
#ifndef MLKV_SERVER_METRICS_METRICS_SERVER_H_
#define MLKV_SERVER_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "server/metrics/unique_fd.h"

namespace mlkv::server::metrics {

// Connections are answered one at a time, in the order they arrive, one request each; a client
// gets kConnectionTimeout to send its request and read the answer, so one that stalls delays
// the next scrape by that much at most.
// Thread-safety: port() from any thread; destroy from the thread that made it.
class MetricsServer {
 public:
  // Listens on host:port (port 0: a free one, see port()) and serves what `collectables`
  // collect, in the order given. Unavailable when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& host, int port,
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
  // Stops listening and waits for a scrape in progress: afterwards nothing collects any more,
  // so what the collectables read (the engine) may go. A connection still sending its request
  // is dropped, not waited for.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsServer(std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
                UniqueFd listener, int port, UniqueFd stop_read, UniqueFd stop_write);

  void AcceptLoop();
  void Serve(UniqueFd connection);
  std::string Scrape() const;

  const std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  const UniqueFd listener_;
  const int port_;
  // A pipe the destructor writes to: readable means stop. The thread polls it beside every
  // socket it waits on, so stopping never waits out a client's timeout.
  const UniqueFd stop_read_;
  const UniqueFd stop_write_;
  std::thread thread_;  // last: it starts once everything it reads is in place
};

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_METRICS_SERVER_H_
