// A server-streaming reactor that ends its call at once with a status: how a streaming handler
// refuses a request (invalid field, full queue, draining) in the callback API.
#ifndef MLKV_SERVER_FINISHED_REACTOR_H_
#define MLKV_SERVER_FINISHED_REACTOR_H_

#include <utility>

#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"

namespace mlkv::server {

// Owned by gRPC from the handler's return until OnDone, which deletes it.
template <typename Response>
class FinishedWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriteReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_FINISHED_REACTOR_H_
