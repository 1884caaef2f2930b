// Binding the metrics endpoint's socket; see tcp_listener.h.
#include "server/metrics/tcp_listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/listen_address.h"

namespace mlkv::server::metrics {
namespace {

// Connections the kernel queues while the server answers one: a burst of scrapes and probes
// waits there rather than being refused.
constexpr int kBacklog = 64;

struct AddrinfoDeleter {
  void operator()(addrinfo* list) const { freeaddrinfo(list); }
};

// The port a bound socket got, in host order.
absl::StatusOr<int> BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  const in_port_t port = address.ss_family == AF_INET6
                             ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                             : reinterpret_cast<sockaddr_in*>(&address)->sin_port;
  return ntohs(port);
}

// A socket bound to `address` and listening, or errno's reason it is not.
absl::StatusOr<UniqueFd> ListenOn(const addrinfo& address) {
  UniqueFd fd(socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     address.ai_protocol));
  if (!fd.valid()) return absl::UnavailableError(std::strerror(errno));
  // Lets a restarted server bind while the last one's connections sit in TIME_WAIT; Linux
  // still refuses a port another socket listens on.
  const int on = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (bind(fd.get(), address.ai_addr, address.ai_addrlen) != 0 || listen(fd.get(), kBacklog) != 0) {
    return absl::UnavailableError(std::strerror(errno));
  }
  return fd;
}

}  // namespace

absl::StatusOr<TcpListener> ListenTcp(const std::string& host, int port) {
  const std::string address = ListenAddress(host, port);
  const auto unavailable = [&](absl::string_view why) {
    return absl::UnavailableError(
        absl::StrCat("metrics: could not listen on ", address, ": ", why));
  };
  if (port < 0 || port > 65535) return unavailable("port out of range");
  absl::string_view name = host;
  // "[::1]" as in a URL: getaddrinfo wants the bare literal.
  if (absl::ConsumePrefix(&name, "[")) absl::ConsumeSuffix(&name, "]");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string node(name);
  const std::string service = std::to_string(port);
  if (const int error =
          getaddrinfo(node.empty() ? nullptr : node.c_str(), service.c_str(), &hints, &found);
      error != 0) {
    return unavailable(gai_strerror(error));
  }
  const std::unique_ptr<addrinfo, AddrinfoDeleter> addresses(found);
  absl::Status last = absl::UnavailableError("no address");
  for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    absl::StatusOr<UniqueFd> fd = ListenOn(*candidate);
    if (!fd.ok()) {
      last = fd.status();
      continue;
    }
    absl::StatusOr<int> bound = BoundPort(fd->get());
    if (!bound.ok()) return unavailable(bound.status().message());
    return TcpListener{.fd = *std::move(fd), .port = *bound};
  }
  return unavailable(last.message());
}

}  // namespace mlkv::server::metrics
