# Detects the CUDA toolkit for the optional CUDA backend (MLKV_CUDA = AUTO | ON | OFF).
# Sets MLKV_HAVE_CUDA. Nothing outside kernels/cuda may depend on CUDA headers.
set(MLKV_HAVE_CUDA OFF)
if(NOT MLKV_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas)
    set(MLKV_HAVE_CUDA ON)
  elseif(MLKV_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MLKV_CUDA=ON but no CUDA compiler with cuBLAS was found")
  endif()
endif()

if(MLKV_HAVE_CUDA)
  # Ampere (A100) and Hopper (H100/H200) only: each extra architecture is another full device
  # compile of every kernel, and CI compiles them all. sm_90 also carries PTX so that newer GPUs
  # can JIT it.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90)
  endif()
  # C++17: what CMake 3.25 knows how to ask nvcc for; the kernels need nothing newer.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  # Imported targets (Abseil, spdlog) carry /usr/include, which would reach nvcc as -isystem and
  # break libstdc++'s #include_next <math.h>; listing it as implicit makes CMake leave it out.
  list(APPEND CMAKE_CUDA_IMPLICIT_INCLUDE_DIRECTORIES /usr/include)
  # Kernel warnings are errors: nvcc's own (-Werror all-warnings) and the host compiler's on the
  # host half of every .cu file (CMake forwards the project's -Wall -Wextra to it). Applied per
  # target in kernels/cuda, not globally.
  set(MLKV_CUDA_WARNING_FLAGS
      $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>)
endif()
message(STATUS "mlkv: CUDA backend ${MLKV_HAVE_CUDA} (MLKV_CUDA=${MLKV_CUDA})")
