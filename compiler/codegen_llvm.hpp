// The LLVM code generator: a Kernel (loss body + gradient roots) -> LLVM IR ->
// native object code for the host CPU. No LLVM header leaks from here; the JIT
// that loads the object is runtime/llvm_engine.hpp.
//
// One exported function per module, the row kernel, with a C ABI:
//
//   void lossforge_kernel(const T* const* inputs, const int64_t* widths,
//                         T* loss, T* const* grads, const double* params,
//                         int64_t begin, int64_t end, T* scratch);
//
//   inputs[i]  the rows of loss input i, row-major, widths[i] values per row
//   loss       one value per row; grads[k] the gradient of the k-th pred input,
//              shaped like that input (grads is unused by a forward kernel)
//   params     one value per Loss::params entry
//   begin,end  the rows to compute, [begin, end): the pointers are the whole
//              arrays, so threads call it on disjoint row ranges
//   scratch    lossforge_scratch_size(widths) values of per-call work space
//              for real[C] intermediates (one row each, padded to whole
//              vectors)
//
//   int64_t lossforge_scratch_size(const int64_t* widths);
//
// Every node of the DAG is computed once per row; uniform nodes (constants,
// params and arithmetic over them) once per call. Semantics are those of
// compiler/semantics.hpp, op by op; see codegen_llvm.cpp for the math routines
// called and their accuracy.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/kernel.hpp"

namespace lossforge::llvm_codegen {

inline constexpr const char* kKernelSymbol = "lossforge_kernel";
inline constexpr const char* kScratchSymbol = "lossforge_scratch_size";

template <class T>
using KernelFunction = void (*)(const T* const* inputs, const int64_t* widths, T* loss, T* const* grads,
                                const double* params, int64_t begin, int64_t end, T* scratch);
using ScratchFunction = int64_t (*)(const int64_t* widths);

// The LLVM IR of the kernel as text: as generated, or after the optimisation passes
// (vectorised for the host CPU).
std::string emit_ir(const Kernel& kernel, DType dtype, bool optimized);
// The optimised kernel as host assembly (for tests that look for vector code).
std::string emit_assembly(const Kernel& kernel, DType dtype);
// How hard LLVM works on a kernel. Both run the same vectorising passes.
// Full: the aggressive code generator, and four vectors per iteration of
// element-wise rows, for kernels that run on millions of rows. Quick: the
// fast instruction selector and register allocator, one vector per
// iteration, about half the compile time for code up to 2x slower on
// row-wise losses and 1.3-1.7x slower on element-wise ones (bench/README.md),
// for kernels that run a few times (CompileOptions::quick_compile in
// lossforge/lossforge.hpp).
// Box kernels get the fast code generator in both tiers: they run at about
// their memory traffic either way.
enum class OptLevel { Full, Quick };

// The optimised kernel as a relocatable object file for the host CPU, ready
// for runtime/llvm_engine.hpp to load (and for the kernel cache to keep).
std::string emit_object(const Kernel& kernel, DType dtype, OptLevel level = OptLevel::Full);

// What the object code depends on besides the kernel, for cache keys:
// "x86_64-pc-linux-gnu icelake-server +avx2,+avx512f,..." and "LLVM 16.0.6 libmvec codegen 7".
std::string host_target_description();
std::string compiler_version();

// Values of `dtype` in one vector register of the host as the kernels use it:
// 512 bits where the CPU has AVX-512F and LLVM does not tune it for 256-bit
// vectors (AMD znver4: 16 floats), else 256 (8 floats; Intel's AVX-512
// CPUs, AVX2 ones). Rows and columns vectorise this wide, and the vector math
// calls are libmvec's variants of this width (_ZGVeN16v_expf, or
// _ZGVdN8v_expf).
int64_t vector_lanes(DType dtype);

}  // namespace lossforge::llvm_codegen
