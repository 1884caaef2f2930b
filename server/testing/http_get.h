// Test helper: a raw HTTP exchange with a server on 127.0.0.1 over a plain socket, to see
// exactly what the metrics endpoint answers (status line, headers, body). For tests only.
#ifndef MLKV_SERVER_TESTING_HTTP_GET_H_
#define MLKV_SERVER_TESTING_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace mlkv::server::testing {

// Sends `request` as is to 127.0.0.1:port and returns all the server answers before closing
// (empty when it answered nothing).
inline std::string HttpExchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  // The server may close before it has read all of an oversized request: a short send is then
  // expected, and what it answered (if anything) is what the caller checks.
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, n);
  close(fd);
  return answer;
}

inline std::string HttpGet(int port, const std::string& path) {
  return HttpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
}

// The value of the exposition line `series value` in a scrape, or -1 when the series is absent.
inline double MetricValue(const std::string& scrape, const std::string& series) {
  const size_t at = scrape.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(scrape.substr(at + series.size() + 2));
}

}  // namespace mlkv::server::testing

#endif  // MLKV_SERVER_TESTING_HTTP_GET_H_
