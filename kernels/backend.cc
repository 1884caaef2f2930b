// The defaults of Backend's optional capabilities: those of a backend without scratch memory or
// graphs.
#include "kernels/backend.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace mlkv {
namespace {

absl::Status NoGraphs(const std::string& backend) {
  return absl::UnimplementedError(absl::StrCat("the ", backend, " backend cannot capture graphs"));
}

}  // namespace

int64_t Backend::ScratchBytes(const OpLimits&) const { return 0; }

absl::Status Backend::ReserveScratch(const OpLimits&) { return absl::OkStatus(); }

absl::Status Backend::BeginCapture() { return NoGraphs(name()); }

absl::StatusOr<std::unique_ptr<BackendGraph>> Backend::EndCapture() { return NoGraphs(name()); }

// No graph can come from a backend that never captures one: the caller mixed up its backends.
void Backend::Replay(const BackendGraph&) {
  MLKV_CHECK(false, "Replay on the {} backend, which cannot have captured a graph", name());
}

}  // namespace mlkv
