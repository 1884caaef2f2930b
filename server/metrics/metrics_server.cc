// The metrics endpoint's thread: accepting connections and moving bytes, with the answers
// themselves in metrics_endpoint.h; see metrics_server.h.
#include "server/metrics/metrics_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/http_request_parser.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/tcp_listener.h"
#include "spdlog/spdlog.h"

namespace mlkv::server::metrics {
namespace {

// How long a client has to send its request and read the answer.
constexpr absl::Duration kConnectionTimeout = absl::Seconds(10);
// After answering, how long and how much of what the client still sends is read and dropped
// before closing (see DiscardUntilClosed).
constexpr absl::Duration kLingerTimeout = absl::Seconds(1);
constexpr size_t kMaxLingerBytes = 64 * 1024;

enum class Wait { kReady, kTimedOut, kStopped };

// Waits until `fd` has one of `events` (or an error, which the next recv/send reports), the
// deadline passes, or `stop_fd` becomes readable.
Wait WaitFor(int fd, short events, int stop_fd, absl::Time deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return Wait::kTimedOut;
      timeout_ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX));
    }
    pollfd fds[] = {{.fd = fd, .events = events, .revents = 0},
                    {.fd = stop_fd, .events = POLLIN, .revents = 0}};
    const int ready = poll(fds, 2, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    // poll fails only on bad arguments or no memory; waiting again would fail the same way.
    MLKV_CHECK(ready >= 0, "metrics: poll: {}", std::strerror(errno));
    if (fds[1].revents != 0) return Wait::kStopped;
    if (fds[0].revents != 0) return Wait::kReady;
  }
}

// Reads a request head from the non-blocking `fd` and returns the answer to it, or nullopt when
// there is none to give: the client closed or failed, the deadline passed, or the server stops.
std::optional<std::string> ReadAndRespond(int fd, int stop_fd, absl::Time deadline,
                                          const std::function<std::string()>& scrape) {
  std::string received;
  char buffer[4096];
  for (;;) {
    if (const std::optional<size_t> end = FindHttpHeadEnd(received);
        end.has_value() && *end <= kMaxHttpHeadBytes) {
      return RespondToHttpHead(absl::string_view(received).substr(0, *end), scrape);
    }
    if (received.size() > kMaxHttpHeadBytes) return RespondHeadTooLarge();
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      received.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return std::nullopt;
    } else if (errno != EINTR && WaitFor(fd, POLLIN, stop_fd, deadline) != Wait::kReady) {
      return std::nullopt;
    }
  }
}

// False when the client went away, the deadline passed or the server stops first.
bool SendAll(int fd, absl::string_view data, int stop_fd, absl::Time deadline) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a client that has gone must not raise SIGPIPE in the whole server.
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return false;
    } else if (errno != EINTR && WaitFor(fd, POLLOUT, stop_fd, deadline) != Wait::kReady) {
      return false;
    }
  }
  return true;
}

// Closing a socket with unread input makes Linux reset the connection, and a reset can destroy
// the answer before the client has read it (a 431 to an oversized request, say). So: end our
// side, then drop what the client still sends until it closes too, within bounds.
void DiscardUntilClosed(int fd, int stop_fd, absl::Time deadline) {
  shutdown(fd, SHUT_WR);
  char buffer[4096];
  for (size_t discarded = 0; discarded < kMaxLingerBytes;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      discarded += static_cast<size_t>(n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return;
    } else if (errno != EINTR && WaitFor(fd, POLLIN, stop_fd, deadline) != Wait::kReady) {
      return;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& host, int port,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
  ASSIGN_OR_RETURN(TcpListener listener, ListenTcp(host, port));
  int stop_pipe[2];
  if (pipe2(stop_pipe, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("metrics: pipe: ", std::strerror(errno)));
  }
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(collectables), std::move(listener.fd), listener.port,
                        UniqueFd(stop_pipe[0]), UniqueFd(stop_pipe[1])));
}

MetricsServer::MetricsServer(std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
                             UniqueFd listener, int port, UniqueFd stop_read, UniqueFd stop_write)
    : collectables_(std::move(collectables)),
      listener_(std::move(listener)),
      port_(port),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)),
      thread_([this] { AcceptLoop(); }) {}

MetricsServer::~MetricsServer() {
  const char stop = 1;
  // One byte into a pipe nobody else writes: it cannot block or come up short, and without it
  // the join below would wait for ever.
  MLKV_CHECK(write(stop_write_.get(), &stop, 1) == 1, "metrics: write: {}", std::strerror(errno));
  thread_.join();
}

void MetricsServer::AcceptLoop() {
  while (WaitFor(listener_.get(), POLLIN, stop_read_.get(), absl::InfiniteFuture()) ==
         Wait::kReady) {
    UniqueFd connection(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (connection.valid()) {
      Serve(std::move(connection));
      continue;
    }
    // Gone before it was accepted, or a signal: nothing to do. Anything else (out of descriptors
    // or memory) leaves the connection queued, so poll would report it again at once: pause
    // rather than spin.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      continue;
    }
    spdlog::warn("metrics: accept: {}", std::strerror(errno));
    if (WaitFor(stop_read_.get(), POLLIN, stop_read_.get(),
                absl::Now() + absl::Milliseconds(100)) != Wait::kTimedOut) {
      return;
    }
  }
}

void MetricsServer::Serve(UniqueFd connection) {
  const absl::Time deadline = absl::Now() + kConnectionTimeout;
  const std::optional<std::string> answer =
      ReadAndRespond(connection.get(), stop_read_.get(), deadline, [this] { return Scrape(); });
  if (!answer.has_value() || !SendAll(connection.get(), *answer, stop_read_.get(), deadline)) {
    return;
  }
  DiscardUntilClosed(connection.get(), stop_read_.get(),
                     std::min(deadline, absl::Now() + kLingerTimeout));
}

std::string MetricsServer::Scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : collectables_) {
    std::vector<prometheus::MetricFamily> collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace mlkv::server::metrics
