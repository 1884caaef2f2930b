// The model's activation workspace as the forward pass sees it: one backend buffer per
// WorkspaceBuffer (model_workspace.h). Internal to engine/model*.cc.
#ifndef MLKV_ENGINE_MODEL_WORKSPACE_BUFFERS_H_
#define MLKV_ENGINE_MODEL_WORKSPACE_BUFFERS_H_

#include <array>
#include <memory>

#include "engine/model.h"
#include "engine/model_workspace.h"
#include "kernels/device_buffer.h"

namespace mlkv {

// Each buffer is as large as the largest step reserved or seen so far and never shrinks, so
// steady-state steps allocate nothing (and decode graphs keep pointing at live memory).
struct Model::Workspace {
  std::array<std::unique_ptr<DeviceBuffer>, kNumWorkspaceBuffers> buffers;

  template <typename T = float>
  T* get(WorkspaceBuffer buffer) const {
    return buffers[static_cast<size_t>(buffer)]->as<T>();
  }
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_MODEL_WORKSPACE_BUFFERS_H_
