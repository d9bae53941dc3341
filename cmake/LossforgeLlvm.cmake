# lossforge_use_llvm(TARGET): compiles TARGET's LLVM-using sources against LLVM 16
# and links the shared libLLVM (TOOLCHAIN.md: never `llvm-config --cxxflags`,
# whose -fno-exceptions would leak into our code). Only called when
# LOSSFORGE_HAVE_LLVM is ON; LOSSFORGE_HAVE_LLVM=1 then reaches every user of
# TARGET, so code that offers the LLVM back end can test `#if LOSSFORGE_HAVE_LLVM`.
function(lossforge_use_llvm target)
  target_include_directories(${target} SYSTEM PRIVATE ${LLVM_INCLUDE_DIRS})
  separate_arguments(llvm_definitions NATIVE_COMMAND "${LLVM_DEFINITIONS}")
  target_compile_options(${target} PRIVATE ${llvm_definitions})
  target_link_libraries(${target} PRIVATE LLVM)
  target_compile_definitions(${target} PUBLIC LOSSFORGE_HAVE_LLVM=1)
endfunction()
