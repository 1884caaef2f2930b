// The /metrics endpoint over real sockets: 200 with Prometheus's text format, 404 elsewhere,
// 405 for other methods, 400 for garbage, 431 for oversized heads, concurrent scrapes, port 0, a
// busy port refused, IPv6, a prompt stop; and end to end, counters and histograms that move as
// requests run through mlkv-server. Linked like mlkv-server (see CMakeLists.txt).
#include "server/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/engine_stats_collector.h"
#include "server/metrics/request_metrics.h"
#include "server/metrics/unique_fd.h"
#include "server/testing/http_get.h"
#include "server/testing/server_harness.h"

namespace mlkv::server::metrics {
namespace {

using ::mlkv::server::testing::HttpExchange;
using ::mlkv::server::testing::MetricValue;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Get(int port, const std::string& path) { return testing::HttpGet(port, path); }

std::unique_ptr<MetricsServer> StartOnFreePort(std::shared_ptr<RequestMetrics> metrics) {
  auto server = MetricsServer::Start("127.0.0.1", 0, {metrics->registry()});
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A connection to the loopback address of `family` (AF_INET or AF_INET6) at `port`, or an invalid
// fd when none could be made (a machine without IPv6, say).
UniqueFd ConnectLoopback(int family, int port) {
  UniqueFd fd(socket(family, SOCK_STREAM, 0));
  sockaddr_storage address{};
  socklen_t size = 0;
  if (family == AF_INET6) {
    auto* ipv6 = reinterpret_cast<sockaddr_in6*>(&address);
    ipv6->sin6_family = AF_INET6;
    ipv6->sin6_port = htons(static_cast<uint16_t>(port));
    ipv6->sin6_addr = in6addr_loopback;
    size = sizeof(sockaddr_in6);
  } else {
    auto* ipv4 = reinterpret_cast<sockaddr_in*>(&address);
    ipv4->sin_family = AF_INET;
    ipv4->sin_port = htons(static_cast<uint16_t>(port));
    ipv4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size = sizeof(sockaddr_in);
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), size) != 0) return {};
  return fd;
}

TEST(MetricsServerTest, ServesTheTextFormatOnMetricsOnly) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> server = StartOnFreePort(metrics);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  const std::string ok = Get(server->port(), "/metrics");
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(ok, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_THAT(ok, HasSubstr("mlkv_request_success_total{finished_reason=\"stop\"} 0"));
  const size_t body_at = ok.find("\r\n\r\n") + 4;
  EXPECT_THAT(ok, HasSubstr("\r\nContent-Length: " + std::to_string(ok.size() - body_at) + "\r\n"));
  EXPECT_THAT(Get(server->port(), "/"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Get(server->port(), "/metrics/more"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Get(server->port(), "/other"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Get(server->port(), "/metrics?name=x"), StartsWith("HTTP/1.1 200"));
  const std::string post = HttpExchange(
      server->port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(post, HasSubstr("\r\nAllow: GET, HEAD\r\n"));
  const std::string head = HttpExchange(server->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, EndsWith("\r\n\r\n"));
}

TEST(MetricsServerTest, AnswersBadRequestsWithAnErrorAndKeepsServing) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> server = StartOnFreePort(metrics);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(HttpExchange(server->port(), "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(HttpExchange(server->port(), "GET /metrics HTTP/2.0\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  // Just past the bound on the head: refused with 431, and the answer reaches the client.
  const std::string big = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') +
                          "\r\nConnection: close\r\n\r\n";
  EXPECT_THAT(HttpExchange(server->port(), big), StartsWith("HTTP/1.1 431"));
  // Far past it: refused (or the connection dropped), not buffered without end.
  const std::string huge = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'a') +
                           "\r\nConnection: close\r\n\r\n";
  EXPECT_THAT(HttpExchange(server->port(), huge), Not(StartsWith("HTTP/1.1 200")));
  // A client that connects and leaves without a word, and one that leaves mid-request.
  EXPECT_TRUE(ConnectLoopback(AF_INET, server->port()).valid());
  {
    UniqueFd client = ConnectLoopback(AF_INET, server->port());
    ASSERT_TRUE(client.valid());
    ASSERT_EQ(send(client.get(), "GET /met", 8, MSG_NOSIGNAL), 8);
  }
  EXPECT_THAT(Get(server->port(), "/metrics"), StartsWith("HTTP/1.1 200"));
}

TEST(MetricsServerTest, ConcurrentScrapesAllSucceed) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> server = StartOnFreePort(metrics);
  ASSERT_NE(server, nullptr);
  std::vector<std::future<std::string>> scrapes;
  for (int i = 0; i < 16; ++i) {
    scrapes.push_back(
        std::async(std::launch::async, [&] { return Get(server->port(), "/metrics"); }));
  }
  for (auto& scrape : scrapes) EXPECT_THAT(scrape.get(), StartsWith("HTTP/1.1 200"));
}

TEST(MetricsServerTest, ListensOnTheGivenPortAndFreesIt) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> first = StartOnFreePort(metrics);
  ASSERT_NE(first, nullptr);
  const int port = first->port();
  first.reset();
  auto again = MetricsServer::Start("127.0.0.1", port, {metrics->registry()});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  EXPECT_THAT(Get(port, "/metrics"), StartsWith("HTTP/1.1 200"));
}

TEST(MetricsServerTest, ABusyPortIsUnavailable) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> first = StartOnFreePort(metrics);
  ASSERT_NE(first, nullptr);
  auto second = MetricsServer::Start("127.0.0.1", first->port(), {metrics->registry()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("127.0.0.1:" + std::to_string(first->port())));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));
  // The first one is unharmed.
  EXPECT_THAT(Get(first->port(), "/metrics"), StartsWith("HTTP/1.1 200"));
}

TEST(MetricsServerTest, AnAddressItCannotListenOnIsUnavailable) {
  auto metrics = std::make_shared<RequestMetrics>();
  for (const std::string host : {"no-such-host.invalid", "192.0.2.1"}) {
    auto server = MetricsServer::Start(host, 0, {metrics->registry()});
    ASSERT_FALSE(server.ok()) << host;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable) << host;
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(host + ":0")) << host;
  }
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1", 65536, {metrics->registry()}).ok());
}

TEST(MetricsServerTest, ListensOnIpv6) {
  auto metrics = std::make_shared<RequestMetrics>();
  for (const std::string host : {"::1", "[::1]"}) {
    auto server = MetricsServer::Start(host, 0, {metrics->registry()});
    if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
    UniqueFd client = ConnectLoopback(AF_INET6, (*server)->port());
    ASSERT_TRUE(client.valid()) << host;
    const std::string request = "GET /metrics HTTP/1.1\r\n\r\n";
    ASSERT_EQ(send(client.get(), request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    char status[12] = {};
    ASSERT_EQ(recv(client.get(), status, sizeof(status) - 1, MSG_WAITALL), 11) << host;
    EXPECT_STREQ(status, "HTTP/1.1 20") << host;
  }
}

// The destructor does not wait out the request timeout of a client that never finishes.
TEST(MetricsServerTest, StopsPromptlyWhileAClientStalls) {
  auto metrics = std::make_shared<RequestMetrics>();
  std::unique_ptr<MetricsServer> server = StartOnFreePort(metrics);
  ASSERT_NE(server, nullptr);
  std::future<std::string> stalled = std::async(std::launch::async, [port = server->port()] {
    // No blank line: the server waits for the rest of the head until it stops.
    return HttpExchange(port, "GET /metrics HTTP/1.1\r\n");
  });
  // Let the server take the connection and start waiting on it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(stalled.get(), "");
}

// What main() wires: the engine reports to RequestMetrics, the collector reads its stats.
TEST(MetricsServerTest, ScrapesMoveAsRequestsRun) {
  auto metrics = std::make_shared<RequestMetrics>();
  EngineOptions options = testing::SmallOptions();
  options.monitor = metrics;
  testing::TestServer grpc_server(options);
  ASSERT_NE(grpc_server.server, nullptr);
  auto server = MetricsServer::Start(
      "127.0.0.1", 0,
      {std::make_shared<EngineStatsCollector>(grpc_server.server->engine()), metrics->registry()});
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string before = Get((*server)->port(), "/metrics");
  EXPECT_EQ(MetricValue(before, "mlkv_request_success_total{finished_reason=\"length\"}"), 0);
  EXPECT_EQ(MetricValue(before, "mlkv_generation_tokens_total"), 0);
  EXPECT_EQ(MetricValue(before, "mlkv_num_requests_running"), 0);
  EXPECT_EQ(MetricValue(before, "mlkv_kv_cache_blocks_total"), options.scheduler.num_blocks);

  for (int salt = 0; salt < 3; ++salt) {
    v1::GenerateRequest request;
    for (int32_t id : testing::Prompt(20, salt)) request.add_prompt_token_ids(id);
    request.set_max_tokens(5);
    request.set_ignore_eos(true);
    const testing::Streamed streamed = testing::Collect(grpc_server.stub.get(), request);
    ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  }

  const std::string after = Get((*server)->port(), "/metrics");
  EXPECT_EQ(MetricValue(after, "mlkv_request_success_total{finished_reason=\"length\"}"), 3);
  EXPECT_EQ(MetricValue(after, "mlkv_prompt_tokens_total"), 60);
  EXPECT_EQ(MetricValue(after, "mlkv_generation_tokens_total"), 15);
  EXPECT_EQ(MetricValue(after, "mlkv_time_to_first_token_seconds_count"), 3);
  EXPECT_EQ(MetricValue(after, "mlkv_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 3);
  EXPECT_EQ(MetricValue(after, "mlkv_inter_token_latency_seconds_count"), 12);
  EXPECT_EQ(MetricValue(after, "mlkv_e2e_request_latency_seconds_count"), 3);
  EXPECT_EQ(MetricValue(after, "mlkv_request_queue_time_seconds_count"), 3);
  EXPECT_GT(MetricValue(after, "mlkv_e2e_request_latency_seconds_sum"), 0);
  EXPECT_EQ(MetricValue(after, "mlkv_num_requests_running"), 0);
  EXPECT_GT(MetricValue(after, "mlkv_prefix_cache_queries_total"), 0);
}

}  // namespace
}  // namespace mlkv::server::metrics
