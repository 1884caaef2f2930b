// The Backend that runs anywhere: host memory, OpenBLAS GEMMs, OpenMP kernels, float32 compute.
#ifndef MLKV_KERNELS_CPU_CPU_BACKEND_H_
#define MLKV_KERNELS_CPU_CPU_BACKEND_H_

#include <memory>

#include "kernels/backend.h"

namespace mlkv {

// `num_threads` <= 0 keeps OpenMP's default (one per core, or OMP_NUM_THREADS); it applies to the
// creating thread and to every thread that calls AttachThread().
std::unique_ptr<Backend> CreateCpuBackend(int num_threads = 0);

}  // namespace mlkv

#endif  // MLKV_KERNELS_CPU_CPU_BACKEND_H_
