// The one place where absl::Status becomes grpc::Status: everything below server/ speaks absl.
#ifndef MLKV_SERVER_GRPC_STATUS_H_
#define MLKV_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace mlkv::server {

// Same code (absl and gRPC share the canonical code numbering), same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_GRPC_STATUS_H_
