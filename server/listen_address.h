// "host:port" for a listening socket, as gRPC takes it and the metrics server resolves it.
#ifndef MLKV_SERVER_LISTEN_ADDRESS_H_
#define MLKV_SERVER_LISTEN_ADDRESS_H_

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mlkv::server {

inline std::string ListenAddress(const std::string& host, int port) {
  // An IPv6 literal needs brackets to keep its colons apart from the port's.
  const bool bare_ipv6 = absl::StrContains(host, ':') && !absl::StartsWith(host, "[");
  return bare_ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

}  // namespace mlkv::server

#endif  // MLKV_SERVER_LISTEN_ADDRESS_H_
