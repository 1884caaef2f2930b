// Channel set-up for the load generator; see grpc_channel.h.
#include "tools/loadgen/grpc_channel.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace mlkv::loadgen {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

absl::Status WaitForConnection(grpc::Channel& channel, const std::string& target,
                               double timeout_s) {
  if (channel.WaitForConnected(DeadlineAfter(timeout_s))) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ", timeout_s,
                                             " s (is the server running there?)"));
}

absl::Status FromGrpc(const grpc::Status& status) {
  // gRPC's and Abseil's status codes are the same numbers.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::chrono::system_clock::time_point DeadlineAfter(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

}  // namespace mlkv::loadgen
