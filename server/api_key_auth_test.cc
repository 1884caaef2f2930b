// API keys: parsing the keys file (comments, blanks, bad lines, no key), and checking calls
// (no header, another scheme, a wrong key, the right key, auth off), without echoing keys.
#include "server/api_key_auth.h"

#include <fstream>

#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"

namespace mlkv::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The outcome of a call that carries `metadata` (key, value pairs).
grpc::Status CheckWith(const ApiKeyAuth& auth,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  grpc::ServerContext context;
  grpc::testing::ServerContextTestSpouse spouse(&context);
  for (const auto& [key, value] : metadata) spouse.AddClientMetadata(key, value);
  return auth.Check(context);
}

ApiKeyAuth Keys(const std::string& text) {
  absl::StatusOr<ApiKeyAuth> auth = ApiKeyAuth::FromText(text);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return *std::move(auth);
}

TEST(ApiKeyAuthTest, OffLetsEveryCallThrough) {
  const ApiKeyAuth off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(CheckWith(off, {}).ok());
  EXPECT_TRUE(CheckWith(off, {{"authorization", "Bearer anything"}}).ok());
}

TEST(ApiKeyAuthTest, ParsesKeysSkippingBlanksAndComments) {
  const ApiKeyAuth auth = Keys("# team A\nkey-one\n\n   \n  key-two  \r\n#key-three\n");
  EXPECT_EQ(auth.num_keys(), 2);
  EXPECT_TRUE(CheckWith(auth, {{"authorization", "Bearer key-one"}}).ok());
  EXPECT_TRUE(CheckWith(auth, {{"authorization", "Bearer key-two"}}).ok());
  EXPECT_FALSE(CheckWith(auth, {{"authorization", "Bearer #key-three"}}).ok());
  EXPECT_FALSE(CheckWith(auth, {{"authorization", "Bearer key-three"}}).ok());
}

TEST(ApiKeyAuthTest, SchemeIsCaseInsensitive) {
  const ApiKeyAuth auth = Keys("k1");
  EXPECT_TRUE(CheckWith(auth, {{"authorization", "bearer k1"}}).ok());
  EXPECT_TRUE(CheckWith(auth, {{"authorization", "BEARER k1"}}).ok());
}

struct BadCall {
  const char* what;
  std::vector<std::pair<std::string, std::string>> metadata;
  const char* message;
};

class BadCallTest : public ::testing::TestWithParam<BadCall> {};

TEST_P(BadCallTest, IsUnauthenticatedWithoutLeakingKeys) {
  const ApiKeyAuth auth = Keys("secret-key-1\nsecret-key-2\n");
  const grpc::Status status = CheckWith(auth, GetParam().metadata);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << GetParam().what;
  EXPECT_THAT(status.error_message(), HasSubstr(GetParam().message)) << GetParam().what;
  EXPECT_THAT(status.error_message(), Not(HasSubstr("secret"))) << GetParam().what;
}

INSTANTIATE_TEST_SUITE_P(
    All, BadCallTest,
    ::testing::Values(
        BadCall{"no header", {}, "missing API key"},
        BadCall{"other metadata only", {{"x-api-key", "secret-key-1"}}, "missing API key"},
        BadCall{"wrong key", {{"authorization", "Bearer secret-key-3"}}, "invalid API key"},
        BadCall{"a prefix of a key", {{"authorization", "Bearer secret-key-"}}, "invalid API key"},
        BadCall{"a key plus more", {{"authorization", "Bearer secret-key-12"}}, "invalid API key"},
        BadCall{"empty key", {{"authorization", "Bearer "}}, "invalid API key"},
        BadCall{"basic scheme", {{"authorization", "Basic secret-key-1"}}, "Bearer <key>"},
        BadCall{"no scheme", {{"authorization", "secret-key-1"}}, "Bearer <key>"},
        BadCall{"two headers",
                {{"authorization", "Bearer secret-key-1"}, {"authorization", "Bearer x"}},
                "more than one"}));

TEST(ApiKeyAuthTest, RefusesKeysFilesWithoutAKey) {
  for (const char* text : {"", "\n\n", "# only a comment\n   \n"}) {
    const absl::StatusOr<ApiKeyAuth> auth = ApiKeyAuth::FromText(text);
    ASSERT_FALSE(auth.ok()) << text;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(auth.status().message()), HasSubstr("no key"));
  }
}

TEST(ApiKeyAuthTest, RefusesAKeyWithWhitespaceNamingTheLineNotTheKey) {
  for (const char* text : {"good\nsecret one\n", "good\nsecret\tone\n", "good\nsec\x01ret\n"}) {
    const absl::StatusOr<ApiKeyAuth> auth = ApiKeyAuth::FromText(text);
    ASSERT_FALSE(auth.ok());
    EXPECT_THAT(std::string(auth.status().message()), HasSubstr("line 2"));
    EXPECT_THAT(std::string(auth.status().message()), Not(HasSubstr("secret")));
  }
}

TEST(ApiKeyAuthTest, FromFileNamesTheFile) {
  mlkv::testing::ScopedTempDir dir("api_keys_test");
  const std::string good = dir.Join("keys"), empty = dir.Join("empty");
  std::ofstream(good) << "# keys\nabc\n";
  std::ofstream(empty) << "";
  absl::StatusOr<ApiKeyAuth> auth = ApiKeyAuth::FromFile(good);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ(auth->num_keys(), 1);
  for (const std::string& bad : {empty, dir.Join("missing"), dir.path()}) {
    auth = ApiKeyAuth::FromFile(bad);
    ASSERT_FALSE(auth.ok()) << bad;
    EXPECT_THAT(std::string(auth.status().message()), HasSubstr(bad));
  }
}

}  // namespace
}  // namespace mlkv::server
