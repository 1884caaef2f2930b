// Checking TLS files at start-up: good PEM files pass; a missing file, a file without the
// expected PEM block, a truncated certificate, an encrypted key and a key of another
// certificate each fail with the path or the reason.
#include "server/tls_options.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/test_certificates.h"

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::TestCertificates;
using ::testing::HasSubstr;

using TlsOptionsTest = testing::CertificatesTest;

TEST_F(TlsOptionsTest, AcceptsMatchingPemFiles) {
  const TestCertificates& c = *certificates_;
  auto cert = ReadPemCertificates(c.server_cert);
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto key = ReadPemPrivateKey(c.server_key);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(CheckKeyMatchesCertificate(*key, *cert).ok());
  // A chain: several certificates in one file.
  const std::string chain = Write(
      "chain.pem", TestCertificates::Read(c.server_cert) + TestCertificates::Read(c.client_ca));
  EXPECT_TRUE(ReadPemCertificates(chain).ok());
  EXPECT_NE(MakeServerCredentials(TlsOptions{*cert, *key, ""}), nullptr);
}

TEST_F(TlsOptionsTest, RefusesFilesWithoutCertificates) {
  const TestCertificates& c = *certificates_;
  const std::string pem = TestCertificates::Read(c.server_cert);
  const std::string truncated = Write("truncated.pem", pem.substr(0, pem.size() / 2));
  const std::string garbage = Write("garbage.pem", "not a certificate\n");
  const std::string broken_second =
      Write("broken_second.pem", pem + TestCertificates::Read(c.client_ca).substr(0, 100));
  for (const std::string& path : {c.server_key, truncated, garbage, broken_second}) {
    auto cert = ReadPemCertificates(path);
    ASSERT_FALSE(cert.ok()) << path;
    EXPECT_EQ(cert.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(std::string(cert.status().message()), HasSubstr(path));
  }
  EXPECT_EQ(ReadPemCertificates(dir_ + "/missing.pem").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TlsOptionsTest, RefusesFilesWithoutAnUnencryptedKey) {
  const TestCertificates& c = *certificates_;
  const std::string encrypted = dir_ + "/encrypted.key";
  const std::string encrypt = "openssl pkey -aes256 -passout pass:secret -in " + c.server_key +
                              " -out " + encrypted + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(encrypt.c_str()), 0);
  for (const std::string& path : {c.server_cert, encrypted, Write("empty.key", "")}) {
    auto key = ReadPemPrivateKey(path);
    ASSERT_FALSE(key.ok()) << path;
    EXPECT_THAT(std::string(key.status().message()), HasSubstr(path));
  }
}

TEST_F(TlsOptionsTest, RefusesAKeyOfAnotherCertificate) {
  const TestCertificates& c = *certificates_;
  const absl::Status status = CheckKeyMatchesCertificate(TestCertificates::Read(c.client_key),
                                                         TestCertificates::Read(c.server_cert));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("not the key"));
}

}  // namespace
}  // namespace mlkv::server
