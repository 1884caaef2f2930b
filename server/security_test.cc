// mlkv-server's security on a loopback port: API keys on every native RPC (health stays open),
// TLS with a certificate made at test time, and mutual TLS refusing clients without a trusted
// certificate.
#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/server_harness.h"
#include "server/testing/test_certificates.h"

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::Connect;
using ::mlkv::server::testing::StartServer;
using ::mlkv::server::testing::TestCertificates;
using ::testing::HasSubstr;
using ::testing::Not;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;

// `key` empty: no authorization metadata. A deadline keeps a refused handshake from waiting
// for reconnection attempts.
void Prepare(grpc::ClientContext* context, const std::string& key) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
}

grpc::Status GetModelInfo(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& key = "") {
  grpc::ClientContext context;
  Prepare(&context, key);
  v1::ModelInfo info;
  return v1::MlkvService::NewStub(channel)->GetModelInfo(&context, {}, &info);
}

grpc::Status Generate(const std::shared_ptr<grpc::Channel>& channel, const std::string& key) {
  grpc::ClientContext context;
  Prepare(&context, key);
  v1::GenerateRequest request;
  request.add_prompt_token_ids(5);
  request.set_max_tokens(2);
  auto reader = v1::MlkvService::NewStub(channel)->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
  }
  return reader->Finish();
}

grpc::Status CallWith(const std::shared_ptr<grpc::Channel>& channel, const std::string& key,
                      const std::string& method) {
  if (method == "Generate") return Generate(channel, key);
  if (method == "GetModelInfo") return GetModelInfo(channel, key);
  auto stub = v1::MlkvService::NewStub(channel);
  grpc::ClientContext context;
  Prepare(&context, key);
  if (method == "GetLoad") {
    v1::Load load;
    return stub->GetLoad(&context, {}, &load);
  }
  if (method == "Tokenize") {
    v1::TokenizeResponse response;
    return stub->Tokenize(&context, {}, &response);
  }
  v1::DetokenizeResponse response;
  return stub->Detokenize(&context, {}, &response);
}

HealthStatus::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  Prepare(&context, "");
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      grpc::health::v1::Health::NewStub(channel)->Check(&context, {}, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(SecurityTest, ApiKeysGuardEveryNativeRpcButNotHealth) {
  ServerOptions options;
  auto auth = ApiKeyAuth::FromText("# keys\nalpha-key\nbeta-key\n");
  ASSERT_TRUE(auth.ok()) << auth.status();
  options.auth = *auth;
  std::unique_ptr<MlkvServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto channel = Connect(*server, grpc::InsecureChannelCredentials());

  for (const char* method : {"Generate", "GetModelInfo", "GetLoad", "Tokenize", "Detokenize"}) {
    for (const char* key : {"", "gamma-key", "alpha-ke"}) {
      const grpc::Status status = CallWith(channel, key, method);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with key '" << key << "': " << status.error_message();
      EXPECT_THAT(status.error_message(), Not(HasSubstr("-key"))) << method;
    }
  }
  EXPECT_TRUE(GetModelInfo(channel, "alpha-key").ok());
  EXPECT_TRUE(GetModelInfo(channel, "beta-key").ok());
  const grpc::Status generated = Generate(channel, "beta-key");
  EXPECT_TRUE(generated.ok()) << generated.error_message();
  EXPECT_EQ(Health(channel), HealthStatus::SERVING);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certificates_ = testing::MakeTestCertificates();
    if (!certificates_) GTEST_SKIP() << "the openssl command-line tool is missing";
  }

  ServerOptions TlsOptions(bool mutual) const {
    ServerOptions options;
    options.tls.cert_chain_pem = TestCertificates::Read(certificates_->server_cert);
    options.tls.private_key_pem = TestCertificates::Read(certificates_->server_key);
    if (mutual) options.tls.client_ca_pem = TestCertificates::Read(certificates_->client_ca);
    return options;
  }

  // A TLS client that trusts `root_cert` and presents `cert`/`key` when given.
  static std::shared_ptr<grpc::ChannelCredentials> Client(const std::string& root_cert,
                                                          const std::string& cert = "",
                                                          const std::string& key = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = TestCertificates::Read(root_cert);
    if (!cert.empty()) {
      ssl.pem_cert_chain = TestCertificates::Read(cert);
      ssl.pem_private_key = TestCertificates::Read(key);
    }
    return grpc::SslCredentials(ssl);
  }

  std::optional<TestCertificates> certificates_;
};

TEST_F(TlsTest, ServesTlsAndRefusesPlaintextAndUntrustingClients) {
  std::unique_ptr<MlkvServer> server = StartServer(TlsOptions(/*mutual=*/false));
  ASSERT_NE(server, nullptr);
  const grpc::Status tls = GetModelInfo(Connect(*server, Client(certificates_->server_cert)));
  EXPECT_TRUE(tls.ok()) << tls.error_message();
  EXPECT_EQ(Health(Connect(*server, Client(certificates_->server_cert))), HealthStatus::SERVING);
  EXPECT_EQ(GetModelInfo(Connect(*server, grpc::InsecureChannelCredentials())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A client that trusts another certificate refuses the server's.
  EXPECT_EQ(GetModelInfo(Connect(*server, Client(certificates_->stranger_cert))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateTheCaSigned) {
  std::unique_ptr<MlkvServer> server = StartServer(TlsOptions(/*mutual=*/true));
  ASSERT_NE(server, nullptr);
  const TestCertificates& c = *certificates_;
  const grpc::Status trusted =
      GetModelInfo(Connect(*server, Client(c.server_cert, c.client_cert, c.client_key)));
  EXPECT_TRUE(trusted.ok()) << trusted.error_message();
  EXPECT_EQ(GetModelInfo(Connect(*server, Client(c.server_cert))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GetModelInfo(Connect(*server, Client(c.server_cert, c.stranger_cert, c.stranger_key)))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, TlsAndApiKeysTogether) {
  ServerOptions options = TlsOptions(/*mutual=*/false);
  options.auth = *ApiKeyAuth::FromText("tls-key\n");
  std::unique_ptr<MlkvServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto channel = Connect(*server, Client(certificates_->server_cert));
  EXPECT_EQ(GetModelInfo(channel).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetModelInfo(channel, "tls-key").ok());
}

}  // namespace
}  // namespace mlkv::server
