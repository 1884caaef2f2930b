# mlkv_grpc_proto(TARGET ROOT FILE...): a static library of the C++ message and gRPC service code
# that protoc and grpc_cpp_plugin generate, at build time, from FILEs (paths relative to ROOT,
# which is also the import root). Code includes the result as "<path without .proto>.grpc.pb.h".
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)

function(mlkv_grpc_proto target root)
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/${target}_gen")
  set(sources)
  foreach(file IN LISTS ARGN)
    string(REGEX REPLACE "\\.proto$" "" stem "${file}")
    set(generated "${out_dir}/${stem}.pb.cc" "${out_dir}/${stem}.pb.h"
                  "${out_dir}/${stem}.grpc.pb.cc" "${out_dir}/${stem}.grpc.pb.h")
    add_custom_command(
      OUTPUT ${generated}
      COMMAND ${CMAKE_COMMAND} -E make_directory "${out_dir}"
      COMMAND protobuf::protoc
              --proto_path=${root}
              --cpp_out=${out_dir}
              --grpc_out=${out_dir}
              --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
              "${root}/${file}"
      DEPENDS "${root}/${file}" protobuf::protoc gRPC::grpc_cpp_plugin
      COMMENT "protoc ${file}"
      VERBATIM)
    list(APPEND sources ${generated})
  endforeach()
  add_library(${target} STATIC ${sources})
  # Generated code is not ours to warn about.
  target_compile_options(${target} PRIVATE -w)
  target_include_directories(${target} SYSTEM PUBLIC "${out_dir}")
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
