// Parsing an HTTP/1.x request head; see http_request_parser.h.
#include "server/metrics/http_request_parser.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace mlkv::server::metrics {
namespace {

constexpr absl::string_view kLineEnd = "\r\n";
constexpr absl::string_view kHeadEnd = "\r\n\r\n";

// RFC 9110 section 5.6.2: the characters of a method or a header name.
bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        !absl::StrContains("!#$%&'*+-.^_`|~", c)) {
      return false;
    }
  }
  return true;
}

// Printable ASCII without spaces: what a request target may hold (percent-encoding aside).
bool IsVisible(absl::string_view text) {
  for (const char c : text) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// HTTP/1.0 and HTTP/1.1; a later 1.x minor version is read as 1.1 (RFC 9110 section 2.5).
bool IsHttp1(absl::string_view version) {
  return version.size() == 8 && absl::StartsWith(version, "HTTP/1.") &&
         absl::ascii_isdigit(static_cast<unsigned char>(version.back()));
}

absl::Status CheckHeaderLine(absl::string_view line) {
  const size_t colon = line.find(':');
  // No whitespace before the colon (RFC 9112 section 5.1), and no obsolete line folding: both
  // have been used to smuggle headers past one parser and not another.
  if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
    return absl::InvalidArgumentError(absl::StrCat("bad header line: ", line.substr(0, 64)));
  }
  for (const char c : line.substr(colon + 1)) {
    if (c == '\0' || c == '\r' || c == '\n') {
      return absl::InvalidArgumentError("control character in a header value");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<size_t> FindHttpHeadEnd(absl::string_view received) {
  const size_t at = received.find(kHeadEnd);
  if (at == absl::string_view::npos) return std::nullopt;
  return at + kHeadEnd.size();
}

absl::StatusOr<HttpRequest> ParseHttpHead(absl::string_view head) {
  if (!absl::ConsumeSuffix(&head, kHeadEnd)) {
    return absl::InvalidArgumentError("request head does not end with a blank line");
  }
  const std::vector<absl::string_view> lines = absl::StrSplit(head, kLineEnd);
  const std::vector<absl::string_view> parts = absl::StrSplit(lines.front(), ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || !absl::StartsWith(parts[1], "/") ||
      !IsVisible(parts[1]) || !IsHttp1(parts[2])) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad request line: ", lines.front().substr(0, 64)));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    RETURN_IF_ERROR(CheckHeaderLine(lines[i]));
  }
  const absl::string_view target = parts[1];
  return HttpRequest{.method = std::string(parts[0]),
                     .path = std::string(target.substr(0, target.find('?')))};
}

}  // namespace mlkv::server::metrics
