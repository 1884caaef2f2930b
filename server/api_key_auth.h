// API-key authentication of gRPC calls (--api-keys-file): a call must carry the metadata
// `authorization: Bearer <key>` with one of the configured keys, compared in constant time.
#ifndef MLKV_SERVER_API_KEY_AUTH_H_
#define MLKV_SERVER_API_KEY_AUTH_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace mlkv::server {

// A value type: default-constructed it has no keys and lets every call through (auth off).
// Thread-safety: Check is const and may run on any number of threads at once.
class ApiKeyAuth {
 public:
  ApiKeyAuth() = default;

  // Keys from a file's text: one per line; surrounding whitespace is trimmed, blank lines and
  // lines starting with '#' are skipped. InvalidArgument (naming the line, never the key) for a
  // key with whitespace or control characters inside, or when no key is left.
  static absl::StatusOr<ApiKeyAuth> FromText(absl::string_view text);
  // Reads `path` and parses it as FromText does; errors name the file.
  static absl::StatusOr<ApiKeyAuth> FromFile(const std::string& path);

  bool enabled() const { return !key_digests_.empty(); }
  int num_keys() const { return static_cast<int>(key_digests_.size()); }

  // OK when auth is off or the call carries a configured key; else UNAUTHENTICATED with a
  // message that says what was wrong (no header, another scheme, a wrong key) but never echoes
  // or hints at a key. Call it first thing in every handler.
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  // Keys are kept as SHA-256 digests: every comparison then covers the same 32 bytes whatever
  // the keys' lengths, so its time says nothing about them.
  using Digest = std::array<uint8_t, 32>;
  explicit ApiKeyAuth(std::vector<Digest> key_digests) : key_digests_(std::move(key_digests)) {}
  static Digest Sha256(absl::string_view data);
  // Whether `key` is one of the keys: compares against every key in full, without branching on
  // any byte, so the time taken does not depend on which key (or how much of one) matched.
  bool Matches(absl::string_view key) const;

  std::vector<Digest> key_digests_;
};

}  // namespace mlkv::server

#endif  // MLKV_SERVER_API_KEY_AUTH_H_
