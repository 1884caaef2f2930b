// Test helper: certificates made at test time with the openssl command-line tool (no key
// material in the repository): a self-signed server certificate for 127.0.0.1, a client CA, and
// client certificates with and without that CA's signature. For tests only.
#ifndef MLKV_SERVER_TESTING_TEST_CERTIFICATES_H_
#define MLKV_SERVER_TESTING_TEST_CERTIFICATES_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "server/read_file.h"

namespace mlkv::server::testing {

struct TestCertificates {
  // Paths of PEM files.
  std::string server_cert, server_key;      // self-signed, for 127.0.0.1 and localhost
  std::string client_ca;                    // signs client_cert
  std::string client_cert, client_key;      // signed by client_ca
  std::string stranger_cert, stranger_key;  // self-signed: no CA vouches for it

  std::string dir;  // where they are, for a test's own extra files
  std::shared_ptr<mlkv::testing::ScopedTempDir> owner;  // removes `dir`

  static std::string Read(const std::string& path) { return *ReadFile(path); }
};

// Makes the certificates in a fresh directory (tests run side by side under ctest -j), removed
// with the result. Unset when the openssl tool is not installed, for the caller to report the
// test as skipped; a failure of the installed tool fails the test.
inline std::optional<TestCertificates> MakeTestCertificates() {
  if (std::system("openssl version >/dev/null 2>&1") != 0) return std::nullopt;
  TestCertificates c;
  c.owner = std::make_shared<mlkv::testing::ScopedTempDir>("certs");
  c.dir = c.owner->path();
  const auto path = [&](const char* name) {
    return (std::filesystem::path(c.dir) / name).string();
  };
  c.server_cert = path("server.pem");
  c.server_key = path("server.key");
  c.client_ca = path("ca.pem");
  c.client_cert = path("client.pem");
  c.client_key = path("client.key");
  c.stranger_cert = path("stranger.pem");
  c.stranger_key = path("stranger.key");
  // P-256 keys: made in milliseconds, unlike RSA.
  const std::string self_signed =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 ";
  const std::string commands[] = {
      self_signed + "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost" +
          " -keyout " + c.server_key + " -out " + c.server_cert,
      self_signed + "-subj /CN=test-client-ca -keyout " + path("ca.key") + " -out " + c.client_ca,
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "
      "/CN=test-client -keyout " +
          c.client_key + " -out " + path("client.csr"),
      "openssl x509 -req -days 1 -in " + path("client.csr") + " -CA " + c.client_ca + " -CAkey " +
          path("ca.key") + " -CAcreateserial -out " + c.client_cert,
      self_signed + "-subj /CN=stranger -keyout " + c.stranger_key + " -out " + c.stranger_cert,
  };
  for (const std::string& command : commands) {
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
      ADD_FAILURE() << "failed: " << command;
      return std::nullopt;
    }
  }
  return c;
}

// A fixture with fresh certificates in dir_, and Write() for a test's own extra files; skipped
// without the openssl tool.
class CertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certificates_ = MakeTestCertificates();
    if (!certificates_) GTEST_SKIP() << "the openssl command-line tool is missing";
    dir_ = certificates_->dir;
  }

  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
  std::optional<TestCertificates> certificates_;
};

}  // namespace mlkv::server::testing

#endif  // MLKV_SERVER_TESTING_TEST_CERTIFICATES_H_
