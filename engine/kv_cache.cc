// Allocation of the per-group KV pools; see kv_cache.h.
#include "engine/kv_cache.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace mlkv {

absl::Status KvCacheOptions::Validate() const {
  if (block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block size must be positive, got ", block_size));
  }
  if (num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("number of KV blocks must be positive, got ", num_blocks));
  }
  return absl::OkStatus();
}

int64_t KvCache::BlockBytes(const ModelConfig& config, const KvCacheOptions& options) {
  return options.block_size * config.kv_bytes_per_token(DTypeBytes(options.dtype));
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const ModelConfig& config,
                                                         const KvCacheOptions& options,
                                                         Backend* backend) {
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<KvCache> cache(new KvCache(options));
  const size_t pool_bytes = static_cast<size_t>(options.num_blocks) * options.block_size *
                            config.num_key_value_heads * config.head_dim *
                            DTypeBytes(options.dtype);
  for (int64_t g = 0; g < config.num_kv_groups(); ++g) {
    GroupPools pools;
    ASSIGN_OR_RETURN(pools.k, backend->Allocate(pool_bytes));
    ASSIGN_OR_RETURN(pools.v, backend->Allocate(pool_bytes));
    pools.view = KvCacheView{pools.k->data(),    pools.v->data(),    options.dtype,
                             options.num_blocks, options.block_size, config.num_key_value_heads,
                             config.head_dim};
    cache->groups_.push_back(std::move(pools));
  }
  return cache;
}

}  // namespace mlkv
