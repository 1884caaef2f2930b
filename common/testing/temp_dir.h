// A fresh directory under the test's temporary folder, removed with everything in it when the
// object goes away. For tests only.
#ifndef MLKV_COMMON_TESTING_TEMP_DIR_H_
#define MLKV_COMMON_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace mlkv::testing {

class ScopedTempDir {
 public:
  // The directory is named `prefix` plus a random suffix.
  explicit ScopedTempDir(const std::string& prefix) {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / (prefix + "_XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace mlkv::testing

#endif  // MLKV_COMMON_TESTING_TEMP_DIR_H_
