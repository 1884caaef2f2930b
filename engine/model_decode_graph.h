// The model's decode graphs (Model::EnableDecodeGraphs): the buckets, the graphs captured so far
// and the padded batch they run. Internal to engine/model*.cc.
#ifndef MLKV_ENGINE_MODEL_DECODE_GRAPH_H_
#define MLKV_ENGINE_MODEL_DECODE_GRAPH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/model.h"
#include "engine/step_batch.h"
#include "kernels/backend.h"

namespace mlkv {

struct Model::DecodeGraphs {
  std::vector<int64_t> buckets;
  int64_t table_width = 0;  // every padded block table's entries: the reserved maximum
  // False once the backend has refused a capture (the CPU's Unimplemented, or a failure): padded
  // steps then run eagerly.
  bool capture = true;
  std::map<int64_t, std::unique_ptr<BackendGraph>> graphs;  // by bucket
  const KvCache* cache = nullptr;  // the cache the graphs write: another one invalidates them
  StepBatch padded;                // reused across steps
  std::vector<int32_t> tokens;     // every padded row's token, on the host
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_MODEL_DECODE_GRAPH_H_
