// GenerationClient over KServe v2 (Open Inference Protocol): each request is one
// ModelStreamInfer stream in decoupled mode (`stream` input true), its tokens counted from the
// `output_ids` tensor of each response. Lets the same load run against either API of
// mlkv-server, or any server that speaks the protocol with Triton's LLM tensor names.
#ifndef MLKV_TOOLS_LOADGEN_KSERVE_CLIENT_H_
#define MLKV_TOOLS_LOADGEN_KSERVE_CLIENT_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "inference/grpc_service.grpc.pb.h"
#include "mlkv/v1/mlkv.grpc.pb.h"
#include "tools/loadgen/generation_client.h"

namespace mlkv::loadgen {

// The request KServe gets for `spec`: `input_ids` (INT32 [n]) or `text_input` (BYTES [1]),
// `sampling_parameters` (BYTES [1], JSON with max_tokens and ignore_eos), `stream` (BOOL [1],
// true), and `output_ids` as the only output asked for (text would need detokenizing).
inference::ModelInferRequest MakeKserveRequest(const RequestSpec& spec, const std::string& model,
                                               bool ignore_eos);
// Tokens in one streamed response: the element count of its `output_ids` tensor (0 without it).
int64_t KserveResponseTokens(const inference::ModelInferResponse& response);

class KserveClient final : public GenerationClient {
 public:
  // `model_name` empty: the model mlkv-server's GetModelInfo names.
  KserveClient(const std::string& target, std::string model_name, CallOptions options);

  // Connects, learns the vocabulary from the native GetModelInfo (mlkv-server serves both APIs
  // on one port; another server answers UNIMPLEMENTED, which is fine when the model name was
  // given), and checks ModelReady.
  absl::StatusOr<ServerInfo> Probe(double timeout_s) override;
  void Start(const RequestSpec& spec, RequestRecord record, Clock::time_point epoch,
             DoneCallback done) override;

 private:
  const std::string target_;
  std::string model_name_;  // set by Probe when it was not given
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const CallOptions options_;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_KSERVE_CLIENT_H_
