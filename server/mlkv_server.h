// mlkv-server's gRPC server: the native API, grpc.health.v1 and reflection on one port, with
// the engine behind them, and the drain-then-stop lifecycle of a SIGTERM.
#ifndef MLKV_SERVER_MLKV_SERVER_H_
#define MLKV_SERVER_MLKV_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "grpcpp/server.h"
#include "server/api_key_auth.h"
#include "server/kserve/kserve_service.h"
#include "server/mlkv_service.h"
#include "server/tls_options.h"

namespace mlkv::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 address or a name; "0.0.0.0" for every IPv4
  int port = 50051;                // 0: a free port, see MlkvServer::port()
  // Largest request message accepted; larger ones fail with RESOURCE_EXHAUSTED before they
  // reach a handler. 4 MiB holds a prompt of about a million token ids.
  int max_receive_message_bytes = 4 << 20;
  // Concurrent calls per client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); 0: gRPC's
  // default (no limit).
  int max_concurrent_streams = 0;
  // Server-initiated keepalive pings on idle connections, and how long to wait for the answer
  // before closing; finds dead clients behind NATs and load balancers. 0: gRPC's defaults
  // (2 hours, 20 seconds).
  int keepalive_time_seconds = 0;
  int keepalive_timeout_seconds = 0;
  TlsOptions tls;   // off by default: plaintext
  ApiKeyAuth auth;  // off by default: every call is let through
};

// The engine and what it serves: the server takes ownership.
struct ServedModel {
  std::unique_ptr<Engine> engine;
  EngineOptions options;   // what the engine was created with (reported by GetModelInfo)
  std::string model_name;  // reported by GetModelInfo
};

// Health is SERVING from the start (the model is loaded before the server listens) until
// Drain. Thread-safety: port() from any thread; Drain and Shutdown from one controlling thread.
class MlkvServer {
 public:
  // Listens on options.host:options.port. Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MlkvServer>> Start(const ServerOptions& options,
                                                           ServedModel model);
  // Shuts down (see Shutdown) if that has not happened.
  ~MlkvServer();
  MlkvServer(const MlkvServer&) = delete;
  MlkvServer& operator=(const MlkvServer&) = delete;

  int port() const { return port_; }
  Engine* engine() const { return model_.engine.get(); }

  // The first half of a graceful stop: health turns NOT_SERVING (for good), Generate answers
  // UNAVAILABLE, and requests in flight run on; waits up to `grace` for them to end. True when
  // none is left.
  bool Drain(absl::Duration grace);
  // Aborts whatever still runs (its streams end with FINISH_REASON_ABORT), gives the streams up
  // to `flush` to deliver their last messages, cancels the rest and stops the engine.
  // Idempotent.
  void Shutdown(absl::Duration flush = absl::Seconds(2));

 private:
  MlkvServer(ServedModel model, ApiKeyAuth auth);

  // Declared in order of dependence: the gRPC server (and its calls) goes first, then the
  // service, then the engine the calls use.
  ServedModel model_;
  const ApiKeyAuth auth_;  // the services check every call against it
  std::unique_ptr<MlkvService> service_;
  std::unique_ptr<kserve::KServeService> kserve_service_;  // KServe v2, on the same port
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_MLKV_SERVER_H_
