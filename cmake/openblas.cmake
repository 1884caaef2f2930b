# Finds the OpenMP build of OpenBLAS (Debian's libopenblas-openmp-dev). The OpenMP build shares
# libgomp's thread pool with our own OpenMP kernels, so BLAS threads and kernel threads never
# compete (the pthread build spins its own threads after each call).
find_path(MLKV_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
find_library(MLKV_OPENBLAS_LIBRARY openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT MLKV_OPENBLAS_INCLUDE_DIR OR NOT MLKV_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found: run scripts/install-deps.sh")
endif()
add_library(mlkv_openblas INTERFACE)
target_include_directories(mlkv_openblas SYSTEM INTERFACE ${MLKV_OPENBLAS_INCLUDE_DIR})
target_link_libraries(mlkv_openblas INTERFACE ${MLKV_OPENBLAS_LIBRARY} OpenMP::OpenMP_CXX)
message(STATUS "mlkv: OpenBLAS ${MLKV_OPENBLAS_LIBRARY}")
