// mlkv-stub-server: the native mlkv.v1 API with no model behind it. Generate streams the
// requested number of tokens (max_tokens, 16 when unset), one message each, as fast as gRPC
// writes them, then the result. Used to measure what the load generator itself sustains
// (bench/run_loadgen_bench.sh): any latency it reports against this server is the client's and
// the transport's, not an engine's.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/flags.h"
#include "common/status_macros.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_callback.h"
#include "mlkv/v1/mlkv.grpc.pb.h"

namespace mlkv::bench {
namespace {

constexpr char kUsage[] = R"(usage: mlkv-stub-server [--host H] [--port P] [--vocab-size V]
  Serves mlkv.v1 Generate and GetModelInfo with no model: every Generate streams max_tokens
  tokens (16 when unset) at once. --port 0 (the default) picks a free port; the address is
  printed on stderr as "mlkv-stub-server: serving on HOST:PORT". SIGTERM or SIGINT stops it.
)";

// One Generate call: `tokens` one-token deltas, then the result. gRPC runs one reaction at a
// time per call, so the counters need no lock. Deletes itself in OnDone.
class ImmediateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  ImmediateStream(int32_t tokens, int32_t prompt_tokens) : remaining_(tokens) {
    v1::GenerateResult* result = result_.mutable_result();
    result->set_request_id(absl::StrCat("stub-", reinterpret_cast<uintptr_t>(this)));
    result->set_finish_reason(v1::FINISH_REASON_LENGTH);
    result->mutable_usage()->set_prompt_tokens(prompt_tokens);
    result->mutable_usage()->set_completion_tokens(tokens);
    delta_.mutable_delta()->add_token_ids(1);
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    if (remaining_-- > 0) {
      StartWrite(&delta_);
    } else {
      StartWriteAndFinish(&result_, grpc::WriteOptions(), grpc::Status::OK);
    }
  }

  int32_t remaining_;
  v1::GenerateResponse delta_, result_;
};

class StubService final : public v1::MlkvService::CallbackService {
 public:
  explicit StubService(int64_t vocab_size) : vocab_size_(vocab_size) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override {
    const int32_t tokens = request->has_max_tokens() ? std::max(request->max_tokens(), 1) : 16;
    return new ImmediateStream(tokens, request->prompt_token_ids_size());
  }

  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* info) override {
    info->set_model_name("stub");
    info->mutable_config()->set_vocab_size(vocab_size_);
    info->mutable_kv_cache()->set_max_model_len(1 << 20);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const int64_t vocab_size_;
};

absl::Status Serve(const std::vector<std::string>& args, const sigset_t& stop_signals) {
  ASSIGN_OR_RETURN(cli::Flags flags,
                   cli::Flags::Parse(args, {"host", "port", "vocab-size"}, {"help"}));
  if (flags.Switch("help")) {
    std::fputs(kUsage, stdout);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(int64_t port, flags.Int("port", 0, 0, 65535));
  ASSIGN_OR_RETURN(int64_t vocab_size, flags.Int("vocab-size", 50304, 1, 1 << 30));
  const std::string host = flags.String("host", "127.0.0.1");
  StubService service(vocab_size);
  int bound_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(host, ":", port), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port));
  }
  std::fprintf(stderr, "mlkv-stub-server: serving on %s:%d\n", host.c_str(), bound_port);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown();
  return absl::OkStatus();
}

}  // namespace
}  // namespace mlkv::bench

int main(int argc, char** argv) {
  // Blocked here, so in every gRPC thread too; main waits for them in sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const absl::Status status =
      mlkv::bench::Serve(std::vector<std::string>(argv + 1, argv + argc), stop_signals);
  if (!status.ok()) {
    std::fprintf(stderr, "mlkv-stub-server: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  return 0;
}
