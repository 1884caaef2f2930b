// TLS on the gRPC port (--tls-cert-file, --tls-key-file, --tls-client-ca-file): the PEM texts,
// checked at start-up so that a bad file fails with a clear error rather than at the first
// handshake, and the gRPC credentials made from them.
#ifndef MLKV_SERVER_TLS_OPTIONS_H_
#define MLKV_SERVER_TLS_OPTIONS_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace mlkv::server {

struct TlsOptions {
  std::string cert_chain_pem;   // the server's certificate, then intermediates; empty: plaintext
  std::string private_key_pem;  // the key of the chain's first certificate
  // Non-empty: mutual TLS; clients must present a certificate that one of these CAs signed.
  std::string client_ca_pem;

  bool enabled() const { return !cert_chain_pem.empty(); }
};

// Reads PEM certificates (at least one) from `path`; InvalidArgument, naming the path, when the
// file holds none or one is malformed.
absl::StatusOr<std::string> ReadPemCertificates(const std::string& path);
// Reads an unencrypted PEM private key from `path` (the server starts unattended: no
// passphrase prompt); InvalidArgument, naming the path, otherwise.
absl::StatusOr<std::string> ReadPemPrivateKey(const std::string& path);
// InvalidArgument unless `key_pem` is the private key of the first certificate in `cert_pem`.
absl::Status CheckKeyMatchesCertificate(std::string_view key_pem, std::string_view cert_pem);

// Plaintext when TLS is off; TLS, mutual when there is a client CA, otherwise.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsOptions& tls);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_TLS_OPTIONS_H_
