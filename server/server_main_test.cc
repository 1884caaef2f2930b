// The mlkv-server binary as an operator runs it: bad flags fail with a clear message and a
// non-zero exit; SIGTERM under load turns health NOT_SERVING, refuses new requests, lets the
// running one finish and exits 0.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/http_get.h"
#include "server/testing/server_harness.h"

extern char** environ;

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::Collect;
using ::mlkv::server::testing::Prompt;
using ::mlkv::server::testing::Streamed;
using ::mlkv::server::testing::TextConfig;
using ::mlkv::server::testing::TinyConfig;
using ::testing::HasSubstr;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;

// A program (mlkv-server unless told otherwise) run with `args`, its stdout and stderr gathered
// by a thread as they come.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args,
                         const std::string& binary = MLKV_SERVER_BIN) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> argv_storage = {binary};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    // One OpenMP thread: --threads sizes the loading thread's team, not the engine thread's
    // (libgomp keeps the setting per thread), and tests run side by side on few cores.
    std::vector<std::string> env_storage = {"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=passive"};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "OMP_", 4) != 0) env_storage.push_back(*e);
    }
    std::vector<char*> env;
    for (std::string& e : env_storage) env.push_back(e.data());
    env.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), env.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        output_.append(buffer, static_cast<size_t>(n));
      }
      close(fd);
    });
  }
  ~ServerProcess() {
    if (!exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  // The exit code (128 + signal for a signal); joins the output reader.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    reader_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void Signal(int signal) { kill(pid_, signal); }
  std::string Output() {
    std::lock_guard<std::mutex> lock(mu_);
    return output_;
  }
  // The port from the "serving ... on 127.0.0.1:PORT" log line, once it appears (0 on timeout).
  int WaitForPort() {
    const std::regex serving("serving .* on 127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 6000; ++i) {
      std::smatch match;
      const std::string text = Output();
      if (std::regex_search(text, match, serving)) return std::stoi(match[1]);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

 private:
  pid_t pid_ = 0;
  bool exited_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::string output_;
};

TEST(ServerMainTest, HelpListsTheFlags) {
  ServerProcess process({"--help"});
  EXPECT_EQ(process.Wait(), 0);
}

TEST(ServerMainTest, BadFlagsFailNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "--model"},
      {{"--model", "/m", "--port", "http"}, "--port"},
      {{"--model", "/m", "--unknown", "1"}, "--unknown"},
  };
  for (const auto& [args, named] : cases) {
    ServerProcess process(args);
    EXPECT_EQ(process.Wait(), 2) << named;
    EXPECT_THAT(process.Output(), HasSubstr(named));
    EXPECT_THAT(process.Output(), HasSubstr("usage: mlkv-server"));
  }
}

TEST(ServerMainTest, UnloadableModelOrEngineFlagFails) {
  mlkv::testing::ScopedTempDir dir("server_main_bad");
  {
    ServerProcess process({"--model", dir.Join("missing"), "--port", "0"});
    EXPECT_EQ(process.Wait(), 1);
    EXPECT_THAT(process.Output(), HasSubstr("missing"));
  }
  ASSERT_TRUE(WriteRandomModel(TinyConfig(), 1, DType::kF32, dir.Join("m")).ok());
  ServerProcess process({"--model", dir.Join("m"), "--port", "0", "--block-size", "0"});
  EXPECT_EQ(process.Wait(), 1);
  EXPECT_THAT(process.Output(), HasSubstr("--block-size"));
}

TEST(ServerMainTest, SigtermDrainsAndExitsZero) {
  mlkv::testing::ScopedTempDir dir("server_main");
  ASSERT_TRUE(WriteRandomModel(TinyConfig(), 1, DType::kF32, dir.Join("tiny")).ok());
  ServerProcess process({"--model", dir.Join("tiny"), "--host", "127.0.0.1", "--port", "0",
                         "--metrics-port", "0", "--threads", "1", "--kv-cache-bytes", "20000000",
                         "--shutdown-grace-seconds", "60"});
  const int port = process.WaitForPort();
  ASSERT_GT(port, 0) << process.Output();
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = v1::MlkvService::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);
  auto check = [&] {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, {}, &response);
    return status.ok() ? response.status() : HealthStatus::UNKNOWN;
  };
  EXPECT_EQ(check(), HealthStatus::SERVING);

  v1::GenerateRequest request;
  for (int32_t id : Prompt(10, 1)) request.add_prompt_token_ids(id);
  // Enough to still be running when SIGTERM comes (a fraction of a second alone), little
  // enough to end within the grace on a loaded machine.
  request.set_max_tokens(1000);
  request.set_ignore_eos(true);
  request.set_temperature(0.0f);
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));

  process.Signal(SIGTERM);
  bool not_serving = false;
  for (int i = 0; i < 2000 && !not_serving; ++i) {
    not_serving = check() == HealthStatus::NOT_SERVING;
    if (!not_serving) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(not_serving);
  v1::GenerateRequest late = request;
  late.set_max_tokens(2);
  EXPECT_EQ(Collect(stub.get(), late).status.error_code(), grpc::StatusCode::UNAVAILABLE);

  int tokens = response.delta().token_ids_size();
  std::optional<v1::GenerateResult> result;
  while (reader->Read(&response)) {
    if (response.has_delta()) tokens += response.delta().token_ids_size();
    if (response.has_result()) result = response.result();
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 1000);
  EXPECT_EQ(process.Wait(), 0) << process.Output();
  EXPECT_THAT(process.Output(), HasSubstr("draining"));
}

// mlkv-client, as the README shows it: health, info, generate (ids and text) and load against a
// live server. The model has room for the byte-level tokenizer random models ship.
TEST(ServerMainTest, ClientTalksToTheServer) {
  mlkv::testing::ScopedTempDir dir("server_client");
  ASSERT_TRUE(WriteRandomModel(TextConfig(), 1, DType::kF32, dir.Join("tiny")).ok());
  ServerProcess server({"--model", dir.Join("tiny"), "--port", "0", "--no-metrics", "--threads",
                        "1", "--kv-cache-bytes", "20000000"});
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Output();
  const std::string target = "127.0.0.1:" + std::to_string(port);
  auto client = [&](std::vector<std::string> args) {
    args.push_back("--target");
    args.push_back(target);
    ServerProcess process(args, MLKV_CLIENT_BIN);
    const int code = process.Wait();
    return std::make_pair(code, process.Output());
  };
  auto [health_code, health] = client({"health", "--wait-seconds", "10"});
  EXPECT_EQ(health_code, 0) << health;
  EXPECT_THAT(health, HasSubstr("SERVING"));
  auto [info_code, info] = client({"info"});
  EXPECT_EQ(info_code, 0) << info;
  EXPECT_THAT(info, HasSubstr("\"kv_bytes_per_token\": \"512\""));
  auto [gen_code, generated] =
      client({"generate", "--token-ids", "1,2,3", "--max-tokens", "4", "--temperature", "0"});
  EXPECT_EQ(gen_code, 0) << generated;
  EXPECT_THAT(generated, HasSubstr("FINISH_REASON_LENGTH"));
  EXPECT_THAT(generated, HasSubstr("generated 4"));
  // Byte-level tokens without merges: one prompt token per byte.
  auto [text_code, text] = client({"generate", "--prompt", "Hi there", "--stop", "\x01",
                                   "--max-tokens", "4", "--temperature", "0"});
  EXPECT_EQ(text_code, 0) << text;
  EXPECT_THAT(text, HasSubstr("prompt 8 tokens"));
  auto [bad_code, bad] = client({"generate", "--token-ids", "1,2,3", "--top-p", "0"});
  EXPECT_EQ(bad_code, 1);
  EXPECT_THAT(bad, HasSubstr("INVALID_ARGUMENT: top_p"));
  auto [json_code, json] =
      client({"generate", "--token-ids", "1", "--max-tokens", "2", "--format", "json"});
  EXPECT_EQ(json_code, 0) << json;
  EXPECT_THAT(json, HasSubstr("\"result\""));
  auto [load_code, load] = client({"load"});
  EXPECT_EQ(load_code, 0) << load;
  EXPECT_THAT(load, HasSubstr("\"accepting\": true"));
  server.Signal(SIGINT);
  EXPECT_EQ(server.Wait(), 0) << server.Output();
}

// The operator's view of API keys and metrics on the binary: the start-up line says what is
// on, calls need a key, health does not, and /metrics serves (the warm-up request counted).
TEST(ServerMainTest, ApiKeysAndMetrics) {
  mlkv::testing::ScopedTempDir dir("server_keys_metrics");
  ASSERT_TRUE(WriteRandomModel(TinyConfig(), 1, DType::kF32, dir.Join("tiny")).ok());
  std::ofstream(dir.Join("keys")) << "# operators\nbinary-test-key\n";
  ServerProcess server({"--model", dir.Join("tiny"), "--port", "0", "--metrics-port", "0",
                        "--api-keys-file", dir.Join("keys"), "--threads", "1", "--kv-cache-bytes",
                        "20000000"});
  const int port = server.WaitForPort();
  ASSERT_GT(port, 0) << server.Output();
  const std::regex summary("capacity: .*API keys on \\(1 keys\\); metrics http port ([0-9]+)");
  std::smatch match;
  std::string output;
  for (int i = 0; i < 1000 && !std::regex_search(output, match, summary); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    output = server.Output();
  }
  ASSERT_FALSE(match.empty()) << output;
  const int metrics_port = std::stoi(match[1]);

  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = v1::MlkvService::NewStub(channel);
  const auto load = [&](const std::string& key) {
    grpc::ClientContext context;
    if (!key.empty()) context.AddMetadata("authorization", "Bearer " + key);
    v1::Load response;
    return stub->GetLoad(&context, {}, &response).error_code();
  };
  EXPECT_EQ(load(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(load("wrong"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(load("binary-test-key"), grpc::StatusCode::OK);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse health;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(channel)->Check(&context, {}, &health).ok());

  const std::string scrape = testing::HttpGet(metrics_port, "/metrics");
  EXPECT_THAT(scrape, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(testing::MetricValue(scrape, "mlkv_request_success_total{finished_reason=\"length\"}"),
            1);
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0) << server.Output();
  EXPECT_THAT(server.Output(), HasSubstr("request warm-up: length"));
}

}  // namespace
}  // namespace mlkv::server
