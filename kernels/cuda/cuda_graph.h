// CUDA graphs for the CUDA backend's Backend::BeginCapture / EndCapture / Replay: stream capture,
// instantiation, and the lifetime of the executable graph. A failed capture is an absl::Status
// (the caller can run its ops eagerly instead) and leaves the stream usable.
#ifndef MLKV_KERNELS_CUDA_CUDA_GRAPH_H_
#define MLKV_KERNELS_CUDA_CUDA_GRAPH_H_

#include <cuda_runtime_api.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace mlkv::cuda {

// An instantiated graph, destroyed when dropped. Its ops use the memory of the backend that
// captured it (`owner`), scratch included, so it replays on that backend only.
class CudaGraph final : public BackendGraph {
 public:
  CudaGraph(cudaGraphExec_t exec, const Backend* owner) : exec_(exec), owner_(owner) {}
  ~CudaGraph() override;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  cudaGraphExec_t exec() const { return exec_; }
  const Backend* owner() const { return owner_; }

 private:
  cudaGraphExec_t exec_;
  const Backend* owner_;
};

// Starts recording the work queued on `stream` instead of running it.
absl::Status BeginStreamCapture(cudaStream_t stream);

// Ends the capture of `stream` and instantiates what it recorded. The stream is out of capture
// mode afterwards, whatever the outcome.
absl::StatusOr<std::unique_ptr<CudaGraph>> EndStreamCapture(cudaStream_t stream,
                                                            const Backend* owner);

// Ends the capture of `stream` if one is active, discarding what it recorded (for error paths
// and teardown), and clears the error it may leave.
void AbandonStreamCapture(cudaStream_t stream);

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_CUDA_GRAPH_H_
