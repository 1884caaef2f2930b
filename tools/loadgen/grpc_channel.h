// The one gRPC channel a load-generator run sends on, and conversions from gRPC's types.
#ifndef MLKV_TOOLS_LOADGEN_GRPC_CHANNEL_H_
#define MLKV_TOOLS_LOADGEN_GRPC_CHANNEL_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace mlkv::loadgen {

// An insecure channel to `target`. HTTP/2 streams of one connection multiplex every request;
// the server's --max-concurrent-streams bounds how many run at once on it.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// Waits up to `timeout_s` for the channel to connect; names the target when it cannot.
absl::Status WaitForConnection(grpc::Channel& channel, const std::string& target, double timeout_s);

absl::Status FromGrpc(const grpc::Status& status);

std::chrono::system_clock::time_point DeadlineAfter(double seconds);

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_GRPC_CHANNEL_H_
