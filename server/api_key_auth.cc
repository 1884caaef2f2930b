// Parsing API keys and checking calls against them; see api_key_auth.h.
#include "server/api_key_auth.h"

#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "openssl/evp.h"
#include "server/read_file.h"

namespace mlkv::server {
namespace {

constexpr char kAuthorizationKey[] = "authorization";
constexpr absl::string_view kBearerScheme = "bearer";

grpc::Status Unauthenticated(const std::string& why) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
}

// Whitespace or control characters cannot come through an HTTP/2 header value intact, so a key
// holding them could never be presented: most likely two keys on one line.
bool IsPresentable(absl::string_view key) {
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ApiKeyAuth> ApiKeyAuth::FromText(absl::string_view text) {
  std::vector<Digest> digests;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (!IsPresentable(line)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": a key must not hold whitespace or control characters"));
    }
    digests.push_back(Sha256(line));
  }
  if (digests.empty()) {
    return absl::InvalidArgumentError("no key: every line is blank or a # comment");
  }
  return ApiKeyAuth(std::move(digests));
}

absl::StatusOr<ApiKeyAuth> ApiKeyAuth::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  absl::StatusOr<ApiKeyAuth> auth = FromText(text);
  if (!auth.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", auth.status().message()));
  }
  return auth;
}

grpc::Status ApiKeyAuth::Check(const grpc::ServerContextBase& context) const {
  if (!enabled()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto [first, last] = metadata.equal_range(kAuthorizationKey);
  if (first == last) {
    return Unauthenticated("missing API key: send the metadata 'authorization: Bearer <key>'");
  }
  // Two headers would leave it open which one is checked; a client never needs to send two.
  if (std::next(first) != last) {
    return Unauthenticated("more than one 'authorization' metadata entry");
  }
  const absl::string_view value(first->second.data(), first->second.size());
  // The scheme is case-insensitive (RFC 9110, 11.1).
  const size_t space = value.find(' ');
  if (space == absl::string_view::npos ||
      !absl::EqualsIgnoreCase(value.substr(0, space), kBearerScheme)) {
    return Unauthenticated("authorization: expected 'Bearer <key>'");
  }
  if (!Matches(absl::StripAsciiWhitespace(value.substr(space + 1)))) {
    return Unauthenticated("invalid API key");
  }
  return grpc::Status::OK;
}

ApiKeyAuth::Digest ApiKeyAuth::Sha256(absl::string_view data) {
  Digest digest;
  unsigned int size = 0;
  // Fails only without memory or without OpenSSL's default provider; comparing an unset digest
  // could then let a wrong key through, so stop instead.
  const int ok = EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr);
  MLKV_CHECK(ok == 1 && size == digest.size(), "SHA-256 failed");
  return digest;
}

bool ApiKeyAuth::Matches(absl::string_view key) const {
  const Digest given = Sha256(key);
  uint8_t any_equal = 0;
  for (const Digest& stored : key_digests_) {
    uint8_t difference = 0;
    for (size_t i = 0; i < given.size(); ++i) difference |= given[i] ^ stored[i];
    // 1 when difference is 0, else 0, computed without a branch.
    any_equal |= static_cast<uint8_t>((static_cast<unsigned>(difference) - 1) >> 8) & 1;
  }
  return any_equal != 0;
}

}  // namespace mlkv::server
