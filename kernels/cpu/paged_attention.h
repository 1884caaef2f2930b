// Attention over the paged KV cache of one sharing group, and the cache write, on the CPU.
#ifndef MLKV_KERNELS_CPU_PAGED_ATTENTION_H_
#define MLKV_KERNELS_CPU_PAGED_ATTENTION_H_

#include "kernels/paged_kv.h"

namespace mlkv::cpu {

void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                  const KvCacheView& cache);

// For every row and every KV head, all query heads that share that KV head are served together,
// so each cached key and value is loaded (and converted, and rotated if needed) once per group.
void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                    const RotaryView& rotary, const AttentionParams& params, float* out);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_PAGED_ATTENTION_H_
