// The HTTP request-head parser alone: where a head ends, the request line, and a test per
// class of malformed head.
#include "server/metrics/http_request_parser.h"

#include "gtest/gtest.h"

namespace mlkv::server::metrics {
namespace {

TEST(FindHttpHeadEndTest, EndsAfterTheBlankLine) {
  EXPECT_EQ(FindHttpHeadEnd(""), std::nullopt);
  EXPECT_EQ(FindHttpHeadEnd("GET /metrics HTTP/1.1\r\nHost: x\r\n"), std::nullopt);
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(FindHttpHeadEnd(head), head.size());
  // A body, or the next bytes, are not part of the head.
  EXPECT_EQ(FindHttpHeadEnd(head + "body"), head.size());
}

TEST(ParseHttpHeadTest, ReadsMethodAndPath) {
  absl::StatusOr<HttpRequest> request =
      ParseHttpHead("GET /metrics HTTP/1.1\r\nHost: x:8002\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, "GET");
  EXPECT_EQ(request->path, "/metrics");
}

TEST(ParseHttpHeadTest, PathStopsAtTheQuery) {
  absl::StatusOr<HttpRequest> request = ParseHttpHead("HEAD /metrics?name[]=x&y HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, "HEAD");
  EXPECT_EQ(request->path, "/metrics");
}

TEST(ParseHttpHeadTest, AcceptsLaterHttp1MinorVersionsAndOtherMethods) {
  EXPECT_TRUE(ParseHttpHead("GET / HTTP/1.9\r\n\r\n").ok());
  // Unknown methods are well-formed: the endpoint answers them 405, not 400.
  absl::StatusOr<HttpRequest> request = ParseHttpHead("get /metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, "get");
}

TEST(ParseHttpHeadTest, RejectsMalformedRequestLines) {
  for (const char* head : {
           "\r\n\r\n",                               // no request line
           "garbage\r\n\r\n",                        // one word
           "GET /metrics\r\n\r\n",                   // no version (HTTP/0.9)
           "GET  /metrics HTTP/1.1\r\n\r\n",         // two spaces
           "GET /metrics HTTP/1.1 \r\n\r\n",         // trailing space
           "GET metrics HTTP/1.1\r\n\r\n",           // not origin-form
           "GET http://x/metrics HTTP/1.1\r\n\r\n",  // absolute-form: for proxies
           "GET /met\x01rics HTTP/1.1\r\n\r\n",      // control character in the target
           "GET /metrics HTTP/2.0\r\n\r\n",          // not HTTP/1.x
           "GET /metrics HTTP/1.10\r\n\r\n",         // not a version
           "GET /metrics http/1.1\r\n\r\n",          // the version is case-sensitive
           "G(T /metrics HTTP/1.1\r\n\r\n",          // not a token
       }) {
    EXPECT_EQ(ParseHttpHead(head).status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(head);
  }
}

TEST(ParseHttpHeadTest, RejectsMalformedHeaderLines) {
  for (const char* header : {
           "NoColon",        // not name: value
           ": no name",      // empty name
           "Host : x",       // whitespace before the colon
           " folded: line",  // obsolete line folding
           "Bad\nName: x",   // a bare LF
           "Host: x\ry",     // a bare CR in the value
       }) {
    const std::string head = std::string("GET /metrics HTTP/1.1\r\n") + header + "\r\n\r\n";
    EXPECT_EQ(ParseHttpHead(head).status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(header);
  }
}

TEST(ParseHttpHeadTest, RejectsAHeadWithoutItsBlankLine) {
  EXPECT_FALSE(ParseHttpHead("GET /metrics HTTP/1.1\r\n").ok());
}

}  // namespace
}  // namespace mlkv::server::metrics
