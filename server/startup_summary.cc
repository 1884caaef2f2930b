// The start-up summary line; see startup_summary.h.
#include "server/startup_summary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mlkv::server {

std::string StartupSummary(const v1::KvCacheInfo& kv, const ServerOptions& options,
                           std::optional<int> metrics_port) {
  const char* tls = !options.tls.enabled()              ? "off"
                    : options.tls.client_ca_pem.empty() ? "on"
                                                        : "on, client certificates required";
  const std::string auth =
      options.auth.enabled() ? absl::StrCat("on (", options.auth.num_keys(), " keys)") : "off";
  const std::string metrics =
      metrics_port ? absl::StrCat("http port ", *metrics_port, " /metrics") : "off";
  return absl::StrFormat(
      "capacity: %d KV blocks of %d tokens = %d tokens (%s, %d bytes/token), %d concurrent "
      "sequences of %d tokens; TLS %s; API keys %s; metrics %s",
      kv.num_blocks(), kv.block_size(), kv.capacity_tokens(), kv.kv_dtype(),
      kv.kv_bytes_per_token(), kv.max_concurrent_sequences(), kv.max_model_len(), tls, auth,
      metrics);
}

}  // namespace mlkv::server
