// Reading a small configuration file (keys, certificates) whole, with errors that say why.
#ifndef MLKV_SERVER_READ_FILE_H_
#define MLKV_SERVER_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace mlkv::server {

// The file's bytes. NotFound when it does not exist; FailedPrecondition when it is not a
// regular file (a directory, say) or cannot be read (with the system's reason). Errors name
// the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_READ_FILE_H_
