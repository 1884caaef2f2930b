// Stream capture into CUDA graphs; see cuda_graph.h.
#include "kernels/cuda/cuda_graph.h"

#include "absl/strings/str_cat.h"

namespace mlkv::cuda {
namespace {

// A failed call of capture, as a status. The error is not sticky (the context stays usable), but
// cudaGetLastError would report it again: clear it so that the next op's launch check does not.
absl::Status CaptureError(absl::StatusCode code, const char* call, cudaError_t error) {
  static_cast<void>(cudaGetLastError());
  return absl::Status(code,
                      absl::StrCat("CUDA graph capture: ", call, ": ", cudaGetErrorString(error)));
}

}  // namespace

// The error is ignored: a destructor has no one to report to, and the process may be exiting.
CudaGraph::~CudaGraph() { static_cast<void>(cudaGraphExecDestroy(exec_)); }

// Thread-local mode: a call on this thread that is unsafe during a capture (a cudaMalloc, a
// synchronisation) fails and invalidates the capture instead of running behind its back, while
// other threads, and other backends on them, are not restricted as they would be in global mode.
absl::Status BeginStreamCapture(cudaStream_t stream) {
  if (cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
      e != cudaSuccess) {
    AbandonStreamCapture(stream);
    return CaptureError(absl::StatusCode::kUnavailable, "cudaStreamBeginCapture", e);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CudaGraph>> EndStreamCapture(cudaStream_t stream,
                                                            const Backend* owner) {
  cudaGraph_t graph = nullptr;
  if (cudaError_t e = cudaStreamEndCapture(stream, &graph); e != cudaSuccess) {
    if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
    AbandonStreamCapture(stream);
    return CaptureError(absl::StatusCode::kInternal, "cudaStreamEndCapture", e);
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  // The executable graph is independent of the graph it was made from.
  static_cast<void>(cudaGraphDestroy(graph));
  if (instantiated != cudaSuccess) {
    return CaptureError(absl::StatusCode::kInternal, "cudaGraphInstantiate", instantiated);
  }
  return std::make_unique<CudaGraph>(exec, owner);
}

void AbandonStreamCapture(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) == cudaSuccess &&
      status != cudaStreamCaptureStatusNone) {
    cudaGraph_t graph = nullptr;
    static_cast<void>(cudaStreamEndCapture(stream, &graph));
    if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
  }
  static_cast<void>(cudaGetLastError());
}

}  // namespace mlkv::cuda
