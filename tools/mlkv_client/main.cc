// mlkv-client: a small command-line client of mlkv-server's native API and health service,
// for trying a server out, scripts and smoke tests.
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/flags.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "mlkv/v1/mlkv.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace mlkv::client {
namespace {

using cli::Flags;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

constexpr char kUsage[] = R"(usage: mlkv-client COMMAND [--target HOST:PORT] [FLAGS]

commands:
  generate  (--token-ids 1,2,3 | --prompt TEXT) [--stop STRING ...] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
            [--min-p P] [--repetition-penalty R] [--presence-penalty P]
            [--frequency-penalty F] [--seed S] [--ignore-eos] [--stop-token-ids 4,5]
            [--logprobs N] [--priority P] [--request-id ID] [--timeout-seconds S]
            streams the generated token ids as they arrive, then the text (with a tokenizer
            on the server) and the result
  info      the served model, its KV-cache layout and capacity (GetModelInfo), as JSON
  load      requests running and waiting, KV blocks in use (GetLoad), as JSON
  health    [--service NAME] [--wait-seconds S]: exit 0 once SERVING; waits up to S (0)

  --target HOST:PORT   the server (127.0.0.1:50051)
  --format text|json   text (default; info and load: indented JSON) or one JSON object a line
)";

// Every field, zeros included (0 is a real group index, a real count); `pretty` indents.
std::string ToJson(const google::protobuf::Message& message, bool pretty = false) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<bool> JsonFormat(const Flags& flags) {
  const std::string format = flags.String("format", "text");
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: must be text or json, got \"", format, "\""));
  }
  return format == "json";
}

std::shared_ptr<grpc::Channel> Connect(const Flags& flags) {
  return grpc::CreateChannel(flags.String("target", "127.0.0.1:50051"),
                             grpc::InsecureChannelCredentials());
}

absl::StatusOr<v1::GenerateRequest> RequestFromFlags(const Flags& flags) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
  v1::GenerateRequest r;
  // Ranges are the server's business (it names the field at fault); the client checks types.
  // The prompt: ids or text (the server refuses neither or both, naming the field).
  if (flags.Has("token-ids")) {
    ASSIGN_OR_RETURN(auto ids, flags.IntList("token-ids", kInt32Min, kInt32Max));
    for (int64_t id : ids) r.add_prompt_token_ids(static_cast<int32_t>(id));
  }
  r.set_prompt_text(flags.String("prompt", ""));
  for (const std::string& stop : flags.Strings("stop")) r.add_stop(stop);
  r.set_request_id(flags.String("request-id", ""));
  if (flags.Has("max-tokens")) {
    ASSIGN_OR_RETURN(int64_t v, flags.Int("max-tokens", 0, kInt32Min, kInt32Max));
    r.set_max_tokens(static_cast<int32_t>(v));
  }
  r.set_ignore_eos(flags.Switch("ignore-eos"));
  if (flags.Has("stop-token-ids")) {
    ASSIGN_OR_RETURN(auto stops, flags.IntList("stop-token-ids", kInt32Min, kInt32Max));
    for (int64_t id : stops) r.add_stop_token_ids(static_cast<int32_t>(id));
  }
  constexpr double kAny = std::numeric_limits<double>::max();
  struct FloatField {
    const char* flag;
    void (v1::GenerateRequest::*set)(float);
  };
  for (const FloatField& f :
       {FloatField{"temperature", &v1::GenerateRequest::set_temperature},
        FloatField{"top-p", &v1::GenerateRequest::set_top_p},
        FloatField{"min-p", &v1::GenerateRequest::set_min_p},
        FloatField{"repetition-penalty", &v1::GenerateRequest::set_repetition_penalty},
        FloatField{"presence-penalty", &v1::GenerateRequest::set_presence_penalty},
        FloatField{"frequency-penalty", &v1::GenerateRequest::set_frequency_penalty}}) {
    if (!flags.Has(f.flag)) continue;
    ASSIGN_OR_RETURN(double v, flags.Double(f.flag, 0.0, -kAny, kAny));
    (r.*f.set)(static_cast<float>(v));
  }
  if (flags.Has("top-k")) {
    ASSIGN_OR_RETURN(int64_t v, flags.Int("top-k", 0, kInt32Min, kInt32Max));
    r.set_top_k(static_cast<int32_t>(v));
  }
  if (flags.Has("seed")) {
    ASSIGN_OR_RETURN(int64_t v, flags.Int("seed", 0, 0, std::numeric_limits<int64_t>::max()));
    r.set_seed(static_cast<uint64_t>(v));
  }
  if (flags.Has("logprobs")) {
    ASSIGN_OR_RETURN(int64_t v, flags.Int("logprobs", 0, kInt32Min, kInt32Max));
    r.set_logprobs(static_cast<int32_t>(v));
  }
  ASSIGN_OR_RETURN(int64_t priority, flags.Int("priority", 0, kInt32Min, kInt32Max));
  r.set_priority(static_cast<int32_t>(priority));
  return r;
}

// As a JSON string: text may hold newlines and control characters.
std::string Quoted(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status Generate(const Flags& flags) {
  ASSIGN_OR_RETURN(bool json, JsonFormat(flags));
  ASSIGN_OR_RETURN(v1::GenerateRequest request, RequestFromFlags(flags));
  ASSIGN_OR_RETURN(double timeout, flags.Double("timeout-seconds", 0.0, 0.0, 1e9));
  auto stub = v1::MlkvService::NewStub(Connect(flags));
  grpc::ClientContext context;
  if (timeout > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(timeout * 1e6)));
  }
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  bool started = false;
  std::string text;  // the deltas' text, printed whole (quoted) at the end
  while (reader->Read(&response)) {
    if (json) {
      std::printf("%s\n", ToJson(response).c_str());
    } else if (response.has_delta()) {
      // Token ids as they arrive, on one line.
      if (response.delta().token_ids_size() > 0) {
        std::printf("%s%s", started ? " " : "tokens: ",
                    absl::StrJoin(response.delta().token_ids(), " ").c_str());
        started = true;
      }
      text += response.delta().text();
    } else if (response.has_result()) {
      const v1::GenerateResult& r = response.result();
      if (started) std::printf("\n");
      started = false;
      if (!text.empty()) std::printf("text: %s\n", Quoted(text).c_str());
      std::string stop;
      if (r.has_stop_token_id()) stop = absl::StrCat(" (token ", r.stop_token_id(), ")");
      if (!r.stop_string().empty()) {
        stop = absl::StrCat(" (string ", Quoted(r.stop_string()), ")");
      }
      std::printf("finish: %s%s; prompt %d tokens (%d cached), generated %d; request %s\n",
                  v1::FinishReason_Name(r.finish_reason()).c_str(), stop.c_str(),
                  r.usage().prompt_tokens(), r.usage().cached_prompt_tokens(),
                  r.usage().completion_tokens(), r.request_id().c_str());
    }
    std::fflush(stdout);
  }
  if (started && !json && !response.has_result()) std::printf("\n");
  return FromGrpc(reader->Finish());
}

template <typename Request, typename Response, typename Call>
absl::Status Unary(const Flags& flags, Call call) {
  ASSIGN_OR_RETURN(bool json, JsonFormat(flags));
  auto stub = v1::MlkvService::NewStub(Connect(flags));
  grpc::ClientContext context;
  Response response;
  RETURN_IF_ERROR(FromGrpc(((*stub).*call)(&context, Request(), &response)));
  std::printf("%s\n", ToJson(response, /*pretty=*/!json).c_str());
  return absl::OkStatus();
}

absl::Status Health(const Flags& flags) {
  ASSIGN_OR_RETURN(double wait, flags.Double("wait-seconds", 0.0, 0.0, 1e6));
  auto stub = grpc::health::v1::Health::NewStub(Connect(flags));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(flags.String("service", ""));
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(wait * 1e6));
  std::string last;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    HealthResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && response.status() == HealthResponse::SERVING) {
      std::printf("SERVING\n");
      return absl::OkStatus();
    }
    last = status.ok() ? HealthResponse::ServingStatus_Name(response.status())
                       : status.error_message();
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::UnavailableError(absl::StrCat("not serving: ", last));
}

std::set<std::string> With(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

absl::Status Run(const std::string& command, const std::vector<std::string>& args) {
  const std::set<std::string> common = {"target", "format"};
  if (command == "generate") {
    ASSIGN_OR_RETURN(
        Flags flags,
        Flags::Parse(
            args,
            With(common,
                 {"token-ids", "prompt", "stop", "max-tokens", "temperature", "top-k", "top-p",
                  "min-p", "repetition-penalty", "presence-penalty", "frequency-penalty", "seed",
                  "stop-token-ids", "logprobs", "priority", "request-id", "timeout-seconds"}),
            {"ignore-eos"}));
    if (PrintUsageIfAsked(flags, "mlkv-client generate")) return absl::OkStatus();
    return Generate(flags);
  }
  if (command == "info") {
    ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, common));
    if (PrintUsageIfAsked(flags, "mlkv-client info")) return absl::OkStatus();
    return Unary<v1::GetModelInfoRequest, v1::ModelInfo>(flags,
                                                         &v1::MlkvService::Stub::GetModelInfo);
  }
  if (command == "load") {
    ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, common));
    if (PrintUsageIfAsked(flags, "mlkv-client load")) return absl::OkStatus();
    return Unary<v1::GetLoadRequest, v1::Load>(flags, &v1::MlkvService::Stub::GetLoad);
  }
  if (command == "health") {
    ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, With(common, {"service", "wait-seconds"})));
    if (PrintUsageIfAsked(flags, "mlkv-client health")) return absl::OkStatus();
    return Health(flags);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown command \"", command, "\""));
}

}  // namespace
}  // namespace mlkv::client

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::fputs(mlkv::client::kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const absl::Status status =
      mlkv::client::Run(argv[1], std::vector<std::string>(argv + 2, argv + argc));
  if (!status.ok()) {
    std::fprintf(stderr, "mlkv-client %s: %s: %s\n", argv[1],
                 absl::StatusCodeToString(status.code()).c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
