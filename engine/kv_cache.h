// The paged KV cache: for each sharing group one K pool and one V pool of `num_blocks` blocks,
// allocated on the model's backend. Block ids are shared by all groups: a sequence's one block
// table addresses its tokens in every group (see kernels/paged_kv.h for the layout).
#ifndef MLKV_ENGINE_KV_CACHE_H_
#define MLKV_ENGINE_KV_CACHE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "kernels/backend.h"
#include "model/model_config.h"

namespace mlkv {

struct KvCacheOptions {
  int64_t block_size = 16;
  int64_t num_blocks = 0;
  DType dtype = DType::kF32;  // kF32, kF16 or kBF16

  absl::Status Validate() const;
};

class KvCache {
 public:
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const ModelConfig& config,
                                                         const KvCacheOptions& options,
                                                         Backend* backend);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Bytes of one block over all groups, K and V: block_size x 2 x K x nKV x d x dtype bytes.
  static int64_t BlockBytes(const ModelConfig& config, const KvCacheOptions& options);

  const KvCacheOptions& options() const { return options_; }
  int64_t num_groups() const { return static_cast<int64_t>(groups_.size()); }
  const KvCacheView& group(int64_t g) const { return groups_[g].view; }

 private:
  struct GroupPools {
    std::unique_ptr<DeviceBuffer> k, v;
    KvCacheView view;
  };
  explicit KvCache(const KvCacheOptions& options) : options_(options) {}

  KvCacheOptions options_;
  std::vector<GroupPools> groups_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_KV_CACHE_H_
