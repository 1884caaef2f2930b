// Sole ownership of a file descriptor (a socket or a pipe end): closed once, when the owner goes,
// so that no error path of the metrics server leaks one.
#ifndef MLKV_SERVER_METRICS_UNIQUE_FD_H_
#define MLKV_SERVER_METRICS_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace mlkv::server::metrics {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  // The descriptor, still owned here; -1 when empty.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
};

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_UNIQUE_FD_H_
