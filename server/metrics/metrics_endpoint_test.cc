// Every answer of the metrics endpoint, without sockets: status lines, headers, bodies, and
// that only a scrape request collects.
#include "server/metrics/metrics_endpoint.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::server::metrics {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kExposition[] = "# TYPE up gauge\nup 1\n";

// Answers `head`, counting the scrapes it made.
std::string Respond(const std::string& head, int* scrapes) {
  return RespondToHttpHead(head, [scrapes] {
    ++*scrapes;
    return std::string(kExposition);
  });
}

TEST(MetricsEndpointTest, GetMetricsAnswersTheScrape) {
  int scrapes = 0;
  const std::string answer =
      Respond("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", &scrapes);
  EXPECT_EQ(answer, std::string("HTTP/1.1 200 OK\r\n"
                                "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                "Content-Length: ") +
                        std::to_string(sizeof(kExposition) - 1) + "\r\nConnection: close\r\n\r\n" +
                        kExposition);
  EXPECT_EQ(scrapes, 1);
}

TEST(MetricsEndpointTest, AQueryStringAndHttp10AreServed) {
  int scrapes = 0;
  EXPECT_THAT(Respond("GET /metrics?name[]=up HTTP/1.0\r\n\r\n", &scrapes),
              AllOf(StartsWith("HTTP/1.1 200 OK\r\n"), EndsWith(kExposition)));
}

TEST(MetricsEndpointTest, HeadHasTheHeadersOfGetWithoutTheBody) {
  int scrapes = 0;
  const std::string answer = Respond("HEAD /metrics HTTP/1.1\r\n\r\n", &scrapes);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: " + std::to_string(sizeof(kExposition) - 1)));
  EXPECT_THAT(answer, EndsWith("\r\n\r\n"));
}

TEST(MetricsEndpointTest, OtherMethodsAre405WithAllow) {
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    int scrapes = 0;
    const std::string answer =
        Respond(std::string(method) + " /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &scrapes);
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n")) << method;
    EXPECT_THAT(answer, HasSubstr("\r\nAllow: GET, HEAD\r\n")) << method;
    EXPECT_EQ(scrapes, 0) << method;
  }
}

TEST(MetricsEndpointTest, OtherPathsAre404) {
  for (const char* path : {"/", "/metrics/", "/metrics/more", "/Metrics", "/other", "/metricsx"}) {
    int scrapes = 0;
    EXPECT_THAT(Respond(std::string("GET ") + path + " HTTP/1.1\r\n\r\n", &scrapes),
                StartsWith("HTTP/1.1 404 Not Found\r\n"))
        << path;
    EXPECT_EQ(scrapes, 0) << path;
  }
}

TEST(MetricsEndpointTest, MalformedHeadsAre400) {
  int scrapes = 0;
  const std::string answer = Respond("garbage\r\n\r\n", &scrapes);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\nConnection: close\r\n"));
  // The error does not echo what the client sent.
  EXPECT_THAT(answer, Not(HasSubstr("garbage")));
  EXPECT_EQ(scrapes, 0);
}

TEST(MetricsEndpointTest, TooLargeIs431) {
  const std::string answer = RespondHeadTooLarge();
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\nConnection: close\r\n"));
}

TEST(MetricsEndpointTest, ContentLengthMatchesTheBody) {
  int scrapes = 0;
  for (const std::string& answer : {Respond("GET /metrics HTTP/1.1\r\n\r\n", &scrapes),
                                    Respond("GET / HTTP/1.1\r\n\r\n", &scrapes),
                                    Respond("x\r\n\r\n", &scrapes), RespondHeadTooLarge()}) {
    const size_t body_at = answer.find("\r\n\r\n") + 4;
    const size_t length_at = answer.find("Content-Length: ") + 16;
    EXPECT_EQ(std::stoul(answer.substr(length_at)), answer.size() - body_at) << answer;
  }
}

}  // namespace
}  // namespace mlkv::server::metrics
