# The tokenizer and the engine runtime for the GPU machine, so that runtime-level benchmarks
# (bench_kv_cache: prefix-cache reuse and time to first token on the editing trace) run on the
# CUDA backend there. That machine has no PCRE2 or utf8proc: tests/gpu/run_h200.sh --kv-cache
# unpacks the Debian -dev packages carried in .gpu-carry/debs into a prefix and passes it as
# GHOSTLINE_DEPS_PREFIX; their static libraries are linked, so nothing is needed at run time.
set(GHOSTLINE_DEPS_PREFIX "" CACHE PATH "prefix holding include/pcre2.h, include/utf8proc.h and their static libraries")
find_path(GL_PCRE2_INCLUDE pcre2.h HINTS ${GHOSTLINE_DEPS_PREFIX}/usr/include)
find_path(GL_UTF8PROC_INCLUDE utf8proc.h HINTS ${GHOSTLINE_DEPS_PREFIX}/usr/include)
find_library(GL_PCRE2_LIB NAMES libpcre2-8.a pcre2-8 HINTS ${GHOSTLINE_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu)
find_library(GL_UTF8PROC_LIB NAMES libutf8proc.a utf8proc HINTS ${GHOSTLINE_DEPS_PREFIX}/usr/lib/x86_64-linux-gnu)
if(NOT GL_PCRE2_INCLUDE OR NOT GL_UTF8PROC_INCLUDE OR NOT GL_PCRE2_LIB OR NOT GL_UTF8PROC_LIB)
  message(STATUS "PCRE2 or utf8proc not found: bench_kv_cache is not built (run_h200.sh --kv-cache brings them)")
  return()
endif()

add_library(gl_runtime STATIC
  ${REPO}/engine/tokenizer/tokenizer.cpp
  ${REPO}/engine/tokenizer/bpe.cpp
  ${REPO}/engine/tokenizer/pipeline.cpp
  ${REPO}/engine/tokenizer/added_tokens.cpp
  ${REPO}/engine/tokenizer/regex.cpp
  ${REPO}/engine/tokenizer/unicode_text.cpp
  ${REPO}/engine/runtime/block_manager.cpp
  ${REPO}/engine/runtime/radix_cache.cpp
  ${REPO}/engine/runtime/text_stream.cpp
  ${REPO}/engine/runtime/drafter.cpp
  ${REPO}/engine/runtime/scheduler.cpp
  ${REPO}/engine/runtime/engine.cpp
  ${REPO}/engine/runtime/open_engine.cpp
)
target_include_directories(gl_runtime PRIVATE ${GL_PCRE2_INCLUDE} ${GL_UTF8PROC_INCLUDE})
target_compile_definitions(gl_runtime PRIVATE GHOSTLINE_HAVE_TOKENIZER=1 UTF8PROC_STATIC)
target_link_libraries(gl_runtime PUBLIC gl_engine ${GL_PCRE2_LIB} ${GL_UTF8PROC_LIB})

add_executable(bench_kv_cache ${REPO}/bench/kv_cache/bench_kv_cache.cpp)
target_compile_definitions(bench_kv_cache PRIVATE GHOSTLINE_SOURCE_DIR="${REPO}")
target_link_libraries(bench_kv_cache PRIVATE gl_runtime)

add_executable(test_engine_gpu ${REPO}/tests/gpu/test_engine_gpu.cpp)
target_compile_definitions(test_engine_gpu PRIVATE GHOSTLINE_SOURCE_DIR="${REPO}")
target_link_libraries(test_engine_gpu PRIVATE gl_runtime)
