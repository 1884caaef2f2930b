// Checking PEM files with OpenSSL and making gRPC's TLS credentials; see tls_options.h.
#include "server/tls_options.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "openssl/bio.h"
#include "openssl/err.h"
#include "openssl/pem.h"
#include "openssl/x509.h"
#include "server/read_file.h"

namespace mlkv::server {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

BioPtr MemoryBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// OpenSSL's default would prompt on the terminal for an encrypted key's passphrase.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The first certificate in `pem`, or null when there is none.
X509Ptr FirstCertificate(std::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();  // leave OpenSSL's per-thread error queue as gRPC expects it: empty
  return cert;
}

KeyPtr PrivateKey(std::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  return key;
}

}  // namespace

absl::StatusOr<std::string> ReadPemCertificates(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  // Every certificate in the file must parse: a truncated second one would otherwise surface
  // only when a client needs the chain.
  BioPtr bio = MemoryBio(pem);
  int count = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)}) ++count;
  const unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  // Running out of PEM blocks is how the loop ends; any other error is a malformed block.
  const bool clean_end = error == 0 || ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (count == 0 || !clean_end) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, count == 0 ? ": holds no PEM certificate" : ": holds a malformed PEM certificate"));
  }
  return pem;
}

absl::StatusOr<std::string> ReadPemPrivateKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  if (PrivateKey(pem) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no unencrypted PEM private key"));
  }
  return pem;
}

absl::Status CheckKeyMatchesCertificate(std::string_view key_pem, std::string_view cert_pem) {
  X509Ptr cert = FirstCertificate(cert_pem);
  KeyPtr key = PrivateKey(key_pem);
  if (cert == nullptr || key == nullptr) {
    return absl::InvalidArgumentError("no certificate or no private key to compare");
  }
  const bool matches = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::InvalidArgumentError("the private key is not the key of the (first) certificate");
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls.client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({tls.private_key_pem, tls.cert_chain_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace mlkv::server
