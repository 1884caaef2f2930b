// Host memory and cgroup limits; see host_memory.h.
#include "planning/host_memory.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/check.h"

namespace mlkv {
namespace {

namespace fs = std::filesystem;

// The mount points of the two cgroup hierarchies as systemd and container runtimes lay them out.
constexpr char kCgroupV2Root[] = "/sys/fs/cgroup";
constexpr char kCgroupV1MemoryRoot[] = "/sys/fs/cgroup/memory";

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The smallest limit in `file` of the cgroup at `cgroup_path` (relative to `root`) and each of its
// ancestors: a parent's limit binds its children. Inside a cgroup namespace, or when the runtime
// mounts only the container's own cgroup, the deeper directories do not exist and the root's file
// is the container's limit.
std::optional<int64_t> SmallestLimitOnPath(const fs::path& root, const std::string& cgroup_path,
                                           const char* file) {
  std::optional<int64_t> smallest;
  fs::path dir = root / fs::path(cgroup_path).relative_path();
  while (true) {
    if (std::optional<std::string> text = ReadFile(dir / file)) {
      if (std::optional<int64_t> limit = ParseCgroupMemoryLimit(*text)) {
        smallest = smallest ? std::min(*smallest, *limit) : *limit;
      }
    }
    if (dir == root || !dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return smallest;
}

// Limits of this process's cgroups, read from /proc/self/cgroup ("0::/path" for v2,
// "N:controllers:/path" for a v1 hierarchy).
std::optional<int64_t> CgroupMemoryLimit() {
  std::optional<std::string> self = ReadFile("/proc/self/cgroup");
  if (!self) return std::nullopt;
  std::optional<int64_t> smallest;
  auto take = [&smallest](std::optional<int64_t> limit) {
    if (limit) smallest = smallest ? std::min(*smallest, *limit) : *limit;
  };
  for (absl::string_view line : absl::StrSplit(*self, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      take(SmallestLimitOnPath(kCgroupV2Root, fields[2], "memory.max"));
    }
    for (absl::string_view controller : absl::StrSplit(fields[1], ',')) {
      if (controller == "memory") {
        take(SmallestLimitOnPath(kCgroupV1MemoryRoot, fields[2], "memory.limit_in_bytes"));
      }
    }
  }
  return smallest;
}

}  // namespace

std::optional<int64_t> ParseCgroupMemoryLimit(absl::string_view text) {
  int64_t bytes = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &bytes) || bytes <= 0) {
    return std::nullopt;  // "max", empty, or garbage: no limit we can use
  }
  return bytes;
}

int64_t HostMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  MLKV_CHECK(pages > 0 && page_size > 0, "sysconf reports no physical memory ({} pages of {})",
             pages, page_size);
  int64_t physical = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(pages), static_cast<int64_t>(page_size),
                             &physical)) {
    physical = std::numeric_limits<int64_t>::max();
  }
  // cgroup v1 spells "no limit" as a huge page-aligned number; the minimum takes care of it.
  const std::optional<int64_t> cgroup = CgroupMemoryLimit();
  return cgroup ? std::min(physical, *cgroup) : physical;
}

}  // namespace mlkv
