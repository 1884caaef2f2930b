// Routing and formatting the metrics endpoint's answers; see metrics_endpoint.h.
#include "server/metrics/metrics_endpoint.h"

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/metrics/http_request_parser.h"

namespace mlkv::server::metrics {
namespace {

constexpr char kMetricsPath[] = "/metrics";
constexpr char kErrorContentType[] = "text/plain; charset=utf-8";

struct Response {
  int status;
  absl::string_view reason;
  absl::string_view content_type = kErrorContentType;
  std::string body;
  absl::string_view extra_headers = "";  // complete lines, each ending in CRLF
  bool send_body = true;                 // false for HEAD: the same headers, no body
};

// HTTP/1.1 whatever the request's version: RFC 9110 section 2.5 lets a server answer with its
// own. Connection: close because the server answers one request per connection, so the client
// does not wait for a second answer nor send a second request into a closing socket.
std::string Format(const Response& response) {
  return absl::StrCat("HTTP/1.1 ", response.status, " ", response.reason,
                      "\r\nContent-Type: ", response.content_type,
                      "\r\nContent-Length: ", response.body.size(), "\r\n", response.extra_headers,
                      "Connection: close\r\n\r\n", response.send_body ? response.body : "");
}

}  // namespace

std::string RespondToHttpHead(absl::string_view head, const std::function<std::string()>& scrape) {
  const absl::StatusOr<HttpRequest> request = ParseHttpHead(head);
  if (!request.ok()) {
    return Format({.status = 400, .reason = "Bad Request", .body = "bad request\n"});
  }
  if (request->path != kMetricsPath) {
    return Format({.status = 404, .reason = "Not Found", .body = "not found: try GET /metrics\n"});
  }
  const bool head_only = request->method == "HEAD";
  if (request->method != "GET" && !head_only) {
    return Format({.status = 405,
                   .reason = "Method Not Allowed",
                   .body = "only GET /metrics\n",
                   .extra_headers = "Allow: GET, HEAD\r\n"});
  }
  return Format({.status = 200,
                 .reason = "OK",
                 .content_type = kMetricsContentType,
                 .body = scrape(),
                 .send_body = !head_only});
}

std::string RespondHeadTooLarge() {
  return Format({.status = 431,
                 .reason = "Request Header Fields Too Large",
                 .body = absl::StrCat("request head over ", kMaxHttpHeadBytes, " bytes\n")});
}

}  // namespace mlkv::server::metrics
