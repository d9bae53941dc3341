# Finds what lossforge builds with. Required: the ANTLR4 runtime, CLI11 and
# nlohmann_json (all header or Debian packages). Optional: LLVM 16, the CUDA
# toolkit (NVRTC) and LibTorch; each sets LOSSFORGE_HAVE_<X>.

# --- ANTLR4 -------------------------------------------------------------------
# The GPU machine has no Java: point LOSSFORGE_GRAMMAR_SOURCES at a folder of
# already generated parser sources to skip the generator.
set(LOSSFORGE_GRAMMAR_SOURCES "" CACHE PATH "Pre-generated ANTLR sources (skips the antlr4 tool)")
set(LOSSFORGE_ANTLR_ROOT "" CACHE PATH "Prefix holding include/antlr4-runtime and lib/libantlr4-runtime.*")
if(LOSSFORGE_ANTLR_ROOT)
  set(ANTLR4_INCLUDE_DIR ${LOSSFORGE_ANTLR_ROOT}/include/antlr4-runtime)
  find_library(ANTLR4_RUNTIME_LIBRARY NAMES antlr4-runtime PATHS ${LOSSFORGE_ANTLR_ROOT}/lib NO_DEFAULT_PATH REQUIRED)
  add_library(antlr4_shared UNKNOWN IMPORTED)
  set_target_properties(antlr4_shared PROPERTIES IMPORTED_LOCATION ${ANTLR4_RUNTIME_LIBRARY})
else()
  find_package(antlr4-runtime 4.9 CONFIG REQUIRED)
endif()
if(NOT LOSSFORGE_GRAMMAR_SOURCES)
  find_program(ANTLR4_TOOL NAMES antlr4 REQUIRED)
endif()

# --- header libraries ---------------------------------------------------------
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()
find_package(nlohmann_json 3 CONFIG QUIET)
if(NOT nlohmann_json_FOUND)
  find_path(NLOHMANN_INCLUDE_DIR nlohmann/json.hpp REQUIRED)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json INTERFACE ${NLOHMANN_INCLUDE_DIR})
endif()
find_package(Threads REQUIRED)

# --- test and benchmark tools -------------------------------------------------
if(LOSSFORGE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(LOSSFORGE_BUILD_BENCH)
  find_package(benchmark QUIET)
endif()

# --- optional back ends -------------------------------------------------------
set(LOSSFORGE_HAVE_LLVM OFF)
if(LOSSFORGE_WITH_LLVM)
  find_package(LLVM 16 CONFIG QUIET)
  if(LLVM_FOUND)
    set(LOSSFORGE_HAVE_LLVM ON)
  endif()
endif()
set(LOSSFORGE_HAVE_CUDA OFF)
if(LOSSFORGE_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND TARGET CUDA::nvrtc)
    set(LOSSFORGE_HAVE_CUDA ON)
  endif()
endif()
set(LOSSFORGE_HAVE_TORCH OFF)
if(LOSSFORGE_WITH_TORCH)
  find_package(Torch QUIET)
  if(Torch_FOUND)
    set(LOSSFORGE_HAVE_TORCH ON)
  endif()
endif()

# Warnings for our own code (not for generated or third-party code).
add_library(lossforge_warnings INTERFACE)
target_compile_options(lossforge_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>)
