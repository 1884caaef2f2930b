// Making the engine mlkv-server serves from its flags, and warming it up before the server
// listens (health is SERVING only once a request has run).
#ifndef MLKV_SERVER_MODEL_LOADER_H_
#define MLKV_SERVER_MODEL_LOADER_H_

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "server/mlkv_server.h"
#include "server/server_flags.h"

namespace mlkv::server {

// Starts the backend and loads the weights, then plans the KV cache in the memory they left
// (less the activation workspace and the backend's scratch) and starts the engine. `monitor`
// (may be null) sees every request, the warm-up included.
absl::StatusOr<ServedModel> LoadServedModel(const ServerFlags& flags,
                                            std::shared_ptr<EngineMonitor> monitor = nullptr);

// Generates one token from a one-token prompt and waits for it: the first step runs every
// kernel once, and a model that cannot run fails here rather than on a client's request.
absl::Status WarmUp(Engine* engine);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_MODEL_LOADER_H_
