// GenerationClient over the native mlkv.v1 API: Generate streams on gRPC's callback API, so one
// process holds thousands of streams without a thread each.
#ifndef MLKV_TOOLS_LOADGEN_NATIVE_CLIENT_H_
#define MLKV_TOOLS_LOADGEN_NATIVE_CLIENT_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "mlkv/v1/mlkv.grpc.pb.h"
#include "tools/loadgen/generation_client.h"

namespace mlkv::loadgen {

// The served model as GetModelInfo describes it.
absl::StatusOr<ServerInfo> GetNativeModelInfo(v1::MlkvService::Stub& stub, double timeout_s);

class NativeClient final : public GenerationClient {
 public:
  // Every request goes to `target` over one channel.
  NativeClient(const std::string& target, CallOptions options);

  absl::StatusOr<ServerInfo> Probe(double timeout_s) override;
  void Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
             DoneCallback done) override;

 private:
  const std::string target_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::MlkvService::Stub> stub_;
  const CallOptions options_;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_NATIVE_CLIENT_H_
