// What the metrics endpoint answers, apart from sockets so that every answer is tested alone:
// GET or HEAD /metrics -> the scrape; other methods -> 405; other paths -> 404; a malformed
// head -> 400; a head past kMaxHttpHeadBytes -> 431. Every answer closes the connection.
#ifndef MLKV_SERVER_METRICS_METRICS_ENDPOINT_H_
#define MLKV_SERVER_METRICS_METRICS_ENDPOINT_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace mlkv::server::metrics {

// The bound on a request head (request line and headers): a Prometheus scrape sends a few hundred
// bytes, and a client sending more must not make the server buffer without end.
inline constexpr size_t kMaxHttpHeadBytes = 8 * 1024;

// Prometheus's text exposition format, version 0.0.4.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The bytes to send for a complete request head (see FindHttpHeadEnd). `scrape` returns the
// exposition text; it runs for GET and HEAD /metrics only, so that errors cost no collection.
std::string RespondToHttpHead(absl::string_view head, const std::function<std::string()>& scrape);

// The bytes to send when kMaxHttpHeadBytes arrive without the head's end.
std::string RespondHeadTooLarge();

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_METRICS_ENDPOINT_H_
