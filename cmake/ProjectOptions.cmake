# Options and warnings as INTERFACE targets, linked PRIVATE by every project target.
add_library(reqctx_warnings INTERFACE)
add_library(reqctx::warnings ALIAS reqctx_warnings)
target_compile_options(reqctx_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough
  # GCC 12 reports false positives inside Asio/Beast coroutine frames (and, with
  # -Wnull-dereference, in every optimised TU that compares Asio executors), so these stay off.
  -Wno-mismatched-new-delete -Wno-maybe-uninitialized)

add_library(reqctx_options INTERFACE)
add_library(reqctx::options ALIAS reqctx_options)
target_include_directories(reqctx_options INTERFACE ${PROJECT_SOURCE_DIR})
target_compile_features(reqctx_options INTERFACE cxx_std_20)

if(REQCTX_SANITIZE)
  target_compile_options(reqctx_options INTERFACE
    -fsanitize=${REQCTX_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(reqctx_options INTERFACE -fsanitize=${REQCTX_SANITIZE})
  if(REQCTX_SANITIZE MATCHES "thread")
    # TSan does not model standalone fences and GCC says so at every one it compiles: about 280
    # warnings per build from Asio's std_fenced_block and the context cascade's batch fence,
    # which would hide a real one. The fenced code paths are covered by the stress tests.
    target_compile_options(reqctx_options INTERFACE -Wno-tsan)
  endif()
endif()

# reqctx_project_target(<target>): the project's standard options and warnings.
function(reqctx_project_target target)
  target_link_libraries(${target} PRIVATE reqctx::options reqctx::warnings)
endfunction()
