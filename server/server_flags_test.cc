// mlkv-server's flags: defaults, the default KV budget, and a named error for each bad flag.
#include "server/server_flags.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/test_certificates.h"

namespace mlkv::server {
namespace {

using ::testing::HasSubstr;

TEST(ServerFlagsTest, Defaults) {
  auto f = ParseServerFlags({"--model", "/models/pythia-mlkv-2/"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->help);
  EXPECT_EQ(f->model_dir, "/models/pythia-mlkv-2/");
  EXPECT_EQ(f->served_model_name, "pythia-mlkv-2");
  EXPECT_EQ(f->server.host, "127.0.0.1");
  EXPECT_EQ(f->server.port, 50051);
  EXPECT_EQ(f->shutdown_grace, absl::Seconds(30));
  EXPECT_EQ(f->max_waiting, 4096);
  EXPECT_EQ(f->server.max_receive_message_bytes, 4 << 20);
  EXPECT_EQ(f->server.max_concurrent_streams, 0);
  EXPECT_EQ(f->server.keepalive_time_seconds, 0);
  // No budget given: the server's default byte budget is added for the engine flags.
  auto budget = f->flags.Int("kv-cache-bytes", 0, 0, int64_t{1} << 62);
  ASSERT_TRUE(budget.ok());
  EXPECT_EQ(*budget, kDefaultKvCacheBytes);
}

TEST(ServerFlagsTest, GivenValues) {
  auto f = ParseServerFlags({"--model=/m",
                             "--served-model-name",
                             "tiny",
                             "--host",
                             "::1",
                             "--port",
                             "0",
                             "--shutdown-grace-seconds",
                             "2.5",
                             "--max-waiting",
                             "8",
                             "--kv-cache-fraction",
                             "0.5",
                             "--max-num-seqs",
                             "4",
                             "--no-prefix-caching",
                             "--max-message-bytes",
                             "1024",
                             "--max-concurrent-streams",
                             "100",
                             "--keepalive-time-seconds",
                             "60",
                             "--keepalive-timeout-seconds",
                             "5"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->served_model_name, "tiny");
  EXPECT_EQ(f->server.host, "::1");
  EXPECT_EQ(f->server.port, 0);
  EXPECT_EQ(f->shutdown_grace, absl::Milliseconds(2500));
  EXPECT_EQ(f->max_waiting, 8);
  EXPECT_FALSE(f->flags.Has("kv-cache-bytes"));  // a budget was given: no default added
  EXPECT_TRUE(f->flags.Switch("no-prefix-caching"));
  EXPECT_EQ(f->server.max_receive_message_bytes, 1024);
  EXPECT_EQ(f->server.max_concurrent_streams, 100);
  EXPECT_EQ(f->server.keepalive_time_seconds, 60);
  EXPECT_EQ(f->server.keepalive_timeout_seconds, 5);
}

TEST(ServerFlagsTest, Help) {
  auto f = ParseServerFlags({"--port", "x", "--help"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->help);
  EXPECT_THAT(kServerUsage, HasSubstr("--shutdown-grace-seconds"));
}

struct BadFlags {
  std::vector<std::string> args;
  const char* named;
};

class BadServerFlagsTest : public ::testing::TestWithParam<BadFlags> {};

TEST_P(BadServerFlagsTest, FailsNamingTheFlag) {
  auto f = ParseServerFlags(GetParam().args);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(GetParam().named));
}

INSTANTIATE_TEST_SUITE_P(
    All, BadServerFlagsTest,
    ::testing::Values(
        BadFlags{{}, "--model"}, BadFlags{{"--model", ""}, "--model"},
        BadFlags{{"--model", "/m", "--port", "65536"}, "--port"},
        BadFlags{{"--model", "/m", "--port", "-1"}, "--port"},
        BadFlags{{"--model", "/m", "--port", "http"}, "--port"},
        BadFlags{{"--model", "/m", "--host", ""}, "--host"},
        BadFlags{{"--model", "/m", "--shutdown-grace-seconds", "-1"}, "--shutdown-grace-seconds"},
        BadFlags{{"--model", "/m", "--max-waiting", "0"}, "--max-waiting"},
        BadFlags{{"--model", "/m", "--max-message-bytes", "0"}, "--max-message-bytes"},
        BadFlags{{"--model", "/m", "--max-concurrent-streams", "-1"}, "--max-concurrent-streams"},
        BadFlags{{"--model", "/m", "--keepalive-time-seconds", "9999999"},
                 "--keepalive-time-seconds"},
        BadFlags{{"--model", "/m", "--served-model-name", ""}, "--served-model-name"},
        BadFlags{{"--model", "/m", "--temperature", "0"}, "--temperature"},
        BadFlags{{"--model", "/m", "--bogus"}, "--bogus"},
        BadFlags{{"--model", "/m", "--metrics-port", "65536"}, "--metrics-port"},
        BadFlags{{"--model", "/m", "--metrics-port", "-1"}, "--metrics-port"},
        BadFlags{{"--model", "/m", "--metrics-port", "http"}, "--metrics-port"},
        BadFlags{{"--model", "/m", "--metrics-port", "9000", "--no-metrics"}, "--no-metrics"},
        BadFlags{{"--model", "/m", "--port", "8002"}, "--metrics-port"},
        BadFlags{{"--model", "/m", "--tls-cert-file", "/c"}, "--tls-key-file"},
        BadFlags{{"--model", "/m", "--tls-key-file", "/k"}, "--tls-cert-file"},
        BadFlags{{"--model", "/m", "--tls-client-ca-file", "/ca"}, "--tls-client-ca-file"},
        BadFlags{{"--model", "/m", "--api-keys-file", "/no/such/keys"}, "--api-keys-file"},
        BadFlags{{"--model", "/m", "stray"}, "stray"}));

TEST(ServerFlagsTest, MetricsAndSecurityDefaults) {
  auto f = ParseServerFlags({"--model", "/m"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metrics_port, kDefaultMetricsPort);
  EXPECT_FALSE(f->server.tls.enabled());
  EXPECT_FALSE(f->server.auth.enabled());
  f = ParseServerFlags({"--model", "/m", "--metrics-port", "0"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metrics_port, 0);
  f = ParseServerFlags({"--model", "/m", "--no-metrics"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metrics_port, std::nullopt);
}

// Flags naming files: good files load; each bad one fails naming its flag.
class ServerFileFlagsTest : public testing::CertificatesTest {
 protected:
  void ExpectFailsNaming(std::vector<std::string> args, const std::string& flag) {
    args.insert(args.begin(), {"--model", "/m"});
    auto f = ParseServerFlags(args);
    ASSERT_FALSE(f.ok()) << flag;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(flag));
  }
};

TEST_F(ServerFileFlagsTest, LoadsTlsAndKeys) {
  const testing::TestCertificates& c = *certificates_;
  auto f = ParseServerFlags({"--model", "/m", "--tls-cert-file", c.server_cert, "--tls-key-file",
                             c.server_key, "--api-keys-file", Write("keys", "k1\nk2\n")});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->server.tls.enabled());
  EXPECT_TRUE(f->server.tls.client_ca_pem.empty());
  EXPECT_EQ(f->server.auth.num_keys(), 2);
  f = ParseServerFlags({"--model", "/m", "--tls-cert-file", c.server_cert, "--tls-key-file",
                        c.server_key, "--tls-client-ca-file", c.client_ca});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->server.tls.client_ca_pem.empty());
}

TEST_F(ServerFileFlagsTest, BadFilesFailNamingTheFlag) {
  const testing::TestCertificates& c = *certificates_;
  const std::string garbage = Write("garbage", "garbage\n");
  const std::string missing = dir_ + "/missing";
  ExpectFailsNaming({"--tls-cert-file", missing, "--tls-key-file", c.server_key},
                    "--tls-cert-file");
  ExpectFailsNaming({"--tls-cert-file", garbage, "--tls-key-file", c.server_key},
                    "--tls-cert-file");
  ExpectFailsNaming({"--tls-cert-file", c.server_cert, "--tls-key-file", garbage},
                    "--tls-key-file");
  ExpectFailsNaming({"--tls-cert-file", c.server_cert, "--tls-key-file", dir_}, "--tls-key-file");
  ExpectFailsNaming({"--tls-cert-file", c.server_cert, "--tls-key-file", c.client_key},
                    "--tls-key-file");
  ExpectFailsNaming({"--tls-cert-file", c.server_cert, "--tls-key-file", c.server_key,
                     "--tls-client-ca-file", garbage},
                    "--tls-client-ca-file");
  ExpectFailsNaming({"--api-keys-file", Write("no_keys", "# none yet\n\n")}, "--api-keys-file");
  ExpectFailsNaming({"--api-keys-file", Write("two_on_a_line", "k1 k2\n")}, "--api-keys-file");
  ExpectFailsNaming({"--api-keys-file", dir_}, "--api-keys-file");
}

}  // namespace
}  // namespace mlkv::server
