// Building, draining and stopping the gRPC server; see mlkv_server.h.
#include "server/mlkv_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/listen_address.h"
#include "spdlog/spdlog.h"

namespace mlkv::server {

MlkvServer::MlkvServer(ServedModel model, ApiKeyAuth auth)
    : model_(std::move(model)), auth_(std::move(auth)) {}

absl::StatusOr<std::unique_ptr<MlkvServer>> MlkvServer::Start(const ServerOptions& options,
                                                              ServedModel model) {
  if (model.engine == nullptr) return absl::InvalidArgumentError("model: no engine");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port: must be in [0, 65535], got ", options.port));
  }
  if (options.max_receive_message_bytes < 1) {
    return absl::InvalidArgumentError("max_receive_message_bytes: must be at least 1");
  }
  std::unique_ptr<MlkvServer> server(new MlkvServer(std::move(model), options.auth));
  server->service_ =
      std::make_unique<MlkvService>(server->model_.engine.get(), server->model_.options,
                                    server->model_.model_name, &server->auth_);
  server->kserve_service_ = std::make_unique<kserve::KServeService>(
      server->model_.engine.get(), server->model_.model_name, &server->auth_);

  // Both are process-wide switches that ServerBuilder reads when it builds.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = ListenAddress(options.host, options.port);
  // gRPC sets SO_REUSEPORT by default on Linux, so a second server on a busy port would start
  // and silently share its traffic; refusing to start is what an operator expects.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (options.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  }
  if (options.keepalive_time_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_time_seconds * 1000);
  }
  if (options.keepalive_timeout_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                               options.keepalive_timeout_seconds * 1000);
  }
  builder.AddListeningPort(address, MakeServerCredentials(options.tls), &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->kserve_service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", address));
  }
  // The default health service answers SERVING for "" from the start, which is true: the
  // model is loaded. Name the API's service too, for per-service probes.
  server->server_->GetHealthCheckService()->SetServingStatus(v1::MlkvService::service_full_name(),
                                                             true);
  server->server_->GetHealthCheckService()->SetServingStatus(
      inference::GRPCInferenceService::service_full_name(), true);
  spdlog::info("mlkv-server: serving {} on {}", server->model_.model_name,
               ListenAddress(options.host, server->port_));
  return server;
}

MlkvServer::~MlkvServer() { Shutdown(); }

bool MlkvServer::Drain(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return true;
  // Final: the default service ignores later updates, so nothing turns it back to SERVING.
  server_->GetHealthCheckService()->Shutdown();
  service_->StopAccepting();
  model_.engine->StopAccepting();
  const EngineStats stats = model_.engine->GetStats();
  spdlog::info("draining: {} running and {} waiting requests, up to {}",
               stats.scheduler.num_running, stats.scheduler.num_waiting,
               absl::FormatDuration(grace));
  const bool idle = model_.engine->WaitIdle(grace);
  if (!idle) spdlog::warn("the grace period ended with requests still running: aborting them");
  return idle;
}

void MlkvServer::Shutdown(absl::Duration flush) {
  if (shut_down_ || server_ == nullptr) return;  // (no server_: Start failed; nothing to stop)
  shut_down_ = true;
  server_->GetHealthCheckService()->Shutdown();
  service_->StopAccepting();
  // Ends every live request with kAbort; the reactors turn that into results on the streams.
  model_.engine->Shutdown();
  // gRPC's own shutdown waits for clients to close their connections, which idle clients may
  // never do: wait for the streams instead, then stop with a short linger for the transports
  // to flush, cancelling whatever is left. The engine stays alive until after this: reactors
  // call it (Abort) until their OnDone.
  const absl::Time flushed = absl::Now() + flush;
  if (!service_->WaitForStreams(flush) ||
      !kserve_service_->WaitForRequests(flushed - absl::Now())) {
    spdlog::warn("streams still open after {}: cancelling them", absl::FormatDuration(flush));
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(100)));
  server_->Wait();
  spdlog::info("mlkv-server: stopped");
}

}  // namespace mlkv::server
