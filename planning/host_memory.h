// The memory this process may use on the host: on the CPU backend, the default memory limit that
// --kv-cache-fraction takes its share of when --memory-limit-bytes is not given.
#ifndef MLKV_PLANNING_HOST_MEMORY_H_
#define MLKV_PLANNING_HOST_MEMORY_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace mlkv {

// The smaller of physical memory and the memory limit of this process's cgroup (v2 memory.max or
// v1 memory.limit_in_bytes, of its own cgroup and every ancestor visible here). A container's
// limit is what the kernel enforces, so it, not the machine's RAM, is what a cache may fill.
// Always positive on Linux (sysconf reports physical memory; the process aborts if it cannot).
int64_t HostMemoryBytes();

// The contents of a cgroup memory-limit file as a byte count: nullopt for "max" (no limit) or
// anything that is not a positive integer.
std::optional<int64_t> ParseCgroupMemoryLimit(absl::string_view text);

}  // namespace mlkv

#endif  // MLKV_PLANNING_HOST_MEMORY_H_
