// mlkv-server under cancellation, deadlines, a full queue, a drain and a shutdown: each ends the
// right calls with the right status, frees their KV blocks, and leaves the rest serving.
#include <chrono>
#include <future>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/server_harness.h"

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::Collect;
using ::mlkv::server::testing::GreedyRequest;
using ::mlkv::server::testing::Prompt;
using ::mlkv::server::testing::SmallOptions;
using ::mlkv::server::testing::Streamed;
using ::mlkv::server::testing::TestServer;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;

// Long enough (thousands of engine steps) to still be running when the test acts on it.
v1::GenerateRequest LongRequest(int salt) { return GreedyRequest(Prompt(20, salt), 4000); }

v1::GenerateRequest ShortRequest(int salt) { return GreedyRequest(Prompt(20, salt), 5); }

// Polls until `done` holds or 20 s pass; true when it held.
template <typename F>
bool Eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool Idle(TestServer& server) {
  const v1::Load load = server.GetLoad();
  return load.num_running() == 0 && load.num_waiting() == 0 && load.num_used_blocks() == 0;
}

TEST(ServerLifecycleTest, ClientCancelAbortsAndFreesBlocks) {
  TestServer server;
  grpc::ClientContext context;
  auto reader = server.stub->Generate(&context, LongRequest(1));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_TRUE(response.has_delta());
  // (The load is published after each step; the first delta comes within the step.)
  EXPECT_TRUE(Eventually([&] { return server.GetLoad().num_used_blocks() > 0; }));
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return Idle(server); })) << server.GetLoad().DebugString();
  // The engine goes on serving.
  const Streamed after = Collect(server.stub.get(), ShortRequest(2));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.token_ids.size(), 5u);
}

TEST(ServerLifecycleTest, DeadlineAbortsAndFreesBlocks) {
  TestServer server;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  const Streamed streamed = Collect(server.stub.get(), LongRequest(3), &context);
  EXPECT_EQ(streamed.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(streamed.result.has_value());
  EXPECT_TRUE(Eventually([&] { return Idle(server); })) << server.GetLoad().DebugString();
  EXPECT_TRUE(Collect(server.stub.get(), ShortRequest(4)).status.ok());
}

TEST(ServerLifecycleTest, FullQueueIsResourceExhausted) {
  EngineOptions options = SmallOptions();
  options.scheduler.max_num_seqs = 1;  // one runs, the next waits
  options.scheduler.max_waiting = 1;   // and the one after finds the queue full
  TestServer server(options);
  grpc::ClientContext running_context, waiting_context;
  auto running = server.stub->Generate(&running_context, LongRequest(5));
  v1::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response));
  auto waiting = server.stub->Generate(&waiting_context, LongRequest(6));
  ASSERT_TRUE(Eventually([&] { return server.GetLoad().num_waiting() == 1; }));

  const Streamed refused = Collect(server.stub.get(), ShortRequest(7));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status.error_message(), ::testing::HasSubstr("queue"));

  running_context.TryCancel();
  waiting_context.TryCancel();
  while (running->Read(&response)) {
  }
  while (waiting->Read(&response)) {
  }
  EXPECT_EQ(running->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(waiting->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return Idle(server); })) << server.GetLoad().DebugString();
  EXPECT_TRUE(Collect(server.stub.get(), ShortRequest(8)).status.ok());
}

TEST(ServerLifecycleTest, DrainFinishesRunningRequestsAndRefusesNewOnes) {
  TestServer server;
  v1::GenerateRequest in_flight = LongRequest(9);
  in_flight.set_max_tokens(300);
  grpc::ClientContext context;
  auto reader = server.stub->Generate(&context, in_flight);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));  // running now

  std::future<bool> drained =
      std::async(std::launch::async, [&] { return server.server->Drain(absl::Seconds(60)); });
  ASSERT_TRUE(Eventually([&] { return server.Health("") == HealthStatus::NOT_SERVING; }));
  EXPECT_EQ(server.Health("mlkv.v1.MlkvService"), HealthStatus::NOT_SERVING);
  const Streamed refused = Collect(server.stub.get(), ShortRequest(10));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(server.GetLoad().accepting());

  // The request in flight runs to its end.
  int tokens = response.delta().token_ids_size();
  std::optional<v1::GenerateResult> result;
  while (reader->Read(&response)) {
    if (response.has_delta()) tokens += response.delta().token_ids_size();
    if (response.has_result()) result = response.result();
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 300);
  EXPECT_TRUE(drained.get());
  server.server->Shutdown();
}

TEST(ServerLifecycleTest, ShutdownAfterGraceEndsStreamsWithAbort) {
  TestServer server;
  grpc::ClientContext context;
  auto reader = server.stub->Generate(&context, LongRequest(11));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_FALSE(server.server->Drain(absl::Milliseconds(10)));  // the grace runs out
  server.server->Shutdown();
  std::optional<v1::GenerateResult> result;
  while (reader->Read(&response)) {
    if (response.has_result()) result = response.result();
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->finish_reason(), v1::FINISH_REASON_ABORT);
  EXPECT_LT(result->usage().completion_tokens(), 4000);
}

TEST(ServerLifecycleTest, OversizeMessageIsResourceExhausted) {
  ServerOptions options;
  options.max_receive_message_bytes = 1024;
  TestServer server(SmallOptions(), options);
  v1::GenerateRequest big = ShortRequest(12);
  big.clear_prompt_token_ids();
  for (int i = 0; i < 2000; ++i) big.add_prompt_token_ids(90);  // 2000 one-byte varints
  const Streamed refused = Collect(server.stub.get(), big);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Collect(server.stub.get(), ShortRequest(13)).status.ok());  // nothing else harmed
}

TEST(ServerLifecycleTest, ConcurrentStreamLimitQueuesCallsOnAConnection) {
  ServerOptions options;
  options.max_concurrent_streams = 1;
  TestServer server(SmallOptions(), options);
  grpc::ClientContext first_context;
  auto first = server.stub->Generate(&first_context, LongRequest(14));
  v1::GenerateResponse response;
  ASSERT_TRUE(first->Read(&response));
  // The connection's one stream is taken: a second call waits for it rather than running.
  std::future<Streamed> second =
      std::async(std::launch::async, [&] { return Collect(server.stub.get(), ShortRequest(15)); });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  first_context.TryCancel();
  while (first->Read(&response)) {
  }
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(second.get().status.ok());
}

}  // namespace
}  // namespace mlkv::server
