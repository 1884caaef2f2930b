// The head of an HTTP/1.x request (RFC 9112): where it ends in the bytes received, and its
// request line. All the metrics endpoint needs: it answers from the method and path alone and
// reads no body.
#ifndef MLKV_SERVER_METRICS_HTTP_REQUEST_PARSER_H_
#define MLKV_SERVER_METRICS_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mlkv::server::metrics {

struct HttpRequest {
  std::string method;  // as sent: methods are case-sensitive ("get" is not GET)
  std::string path;    // the origin-form target up to any '?': "/metrics?x=1" -> "/metrics"
};

// The length of the request head in `received` (the request line, the header lines and the
// blank line that ends them), or nullopt while it has not all arrived.
std::optional<size_t> FindHttpHeadEnd(absl::string_view received);

// Parses a complete head, as FindHttpHeadEnd delimits it. InvalidArgument when the request line
// is not `method SP /target SP HTTP/1.x` or a header line is not `name: value`: the caller
// answers 400 rather than guess what the client meant.
absl::StatusOr<HttpRequest> ParseHttpHead(absl::string_view head);

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_HTTP_REQUEST_PARSER_H_
