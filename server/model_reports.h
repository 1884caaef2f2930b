// The GetModelInfo and GetLoad answers, built from the engine's configuration and statistics.
#ifndef MLKV_SERVER_MODEL_REPORTS_H_
#define MLKV_SERVER_MODEL_REPORTS_H_

#include <string>

#include "engine/engine.h"
#include "mlkv/v1/mlkv.pb.h"

namespace mlkv::server {

// What the server was started with: constant for its life. `stats` supplies the engine's own
// figure for the bytes of a block. Pure; thread-safe.
v1::ModelInfo BuildModelInfo(const std::string& model_name, const ModelConfig& config,
                             const EngineOptions& options, const EngineStats& stats);

// The load as of the engine's last step. Pure; thread-safe.
v1::Load BuildLoad(const EngineStats& stats);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_MODEL_REPORTS_H_
