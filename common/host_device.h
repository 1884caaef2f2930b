// MLKV_HOST_DEVICE marks a function that both the host compiler and nvcc's device pass compile, so
// that the CPU and CUDA backends run one definition of arithmetic they must agree on bit for bit.
#ifndef MLKV_COMMON_HOST_DEVICE_H_
#define MLKV_COMMON_HOST_DEVICE_H_

#ifdef __CUDACC__
#define MLKV_HOST_DEVICE __host__ __device__
#else
#define MLKV_HOST_DEVICE
#endif

#endif  // MLKV_COMMON_HOST_DEVICE_H_
