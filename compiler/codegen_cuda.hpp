// The CUDA code generator: a Kernel (loss body + gradient roots) -> one CUDA
// C++ translation unit that NVRTC (runtime/cuda/) or nvcc compiles.
//
// The source is self-contained: it embeds compiler/semantics.hpp (the exact
// SPEC §3 semantics every back end shares) and the row code of
// compiler/codegen_c.hpp, and needs no header. Per dtype (CudaDType) it defines
// `extern "C" __global__` kernels that compute, in one pass over memory, the
// loss of every row, the gradient of every pred input and the weighted
// reduction (see LossforgeLaunch in codegen_c.hpp for the arguments):
//
//   <symbol>_<dtype>_rows     losses without real[C] inputs (element-wise and
//                             box losses): a grid-stride loop; float losses of
//                             `real` inputs take 4 rows per thread step with
//                             16-byte loads and streaming stores (8-byte for
//                             f16 and bf16; element accesses for an unaligned
//                             array or the last, partial quad), boxes one
//                             16-byte load each (8-byte for f16 and bf16).
//                             The row code is inlined once per kernel: NVRTC's
//                             compile time grows with every inlined copy.
//   <symbol>_<dtype>_warp     losses over real[C] rows, one warp per row
//                             (columns strided over the lanes, warp-shuffle
//                             reductions for max, sum, dot, softmax): C <= kWarpMaxWidth
//   <symbol>_<dtype>_block    the same, one block per row (shared-memory
//                             reductions): wide rows
//
// 16-bit dtypes: f16 and bf16 kernels read inputs and weights of that type
// (compiler/storage_types.hpp), compute in float exactly as the f32 kernel
// does, and write gradients of that type, rounded to nearest even; their
// per-row loss is float. What a model trained in half or bfloat16 needs from
// a loss: no half-precision arithmetic, half the memory traffic.
//
// Float semantics: NVRTC compiles with --fmad=false and IEEE division and
// square root, so +, -, *, / round as the interpreter's; exp, log, pow, erf,
// ... are CUDA's (within a few ulp of glibc's).
//
// Reduction: each block adds its rows' weighted losses in double and makes one
// atomicAdd(double) into LossforgeLaunch::total, so the sum is exact to double
// rounding but its last bits depend on the order blocks finish (not bitwise
// deterministic run to run); per-row losses and gradients are deterministic.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/kernel.hpp"

namespace lossforge {

// Rows of at most this many columns get a warp each, wider rows a block.
inline constexpr long long kWarpMaxWidth = 1024;
// Threads per block of every kernel.
inline constexpr int kCudaBlockSize = 256;

// The element type of a kernel's arrays: f32 and f64 compute in their own
// precision, f16 and bf16 are storage around float computation.
enum class CudaDType { F32, F64, F16, BF16 };
const char* cuda_dtype_name(CudaDType dtype);  // "f32", "f64", "f16", "bf16"
std::optional<CudaDType> find_cuda_dtype(std::string_view name);
inline CudaDType cuda_dtype(DType dtype) { return dtype == DType::F32 ? CudaDType::F32 : CudaDType::F64; }
// The type the kernel computes in: double for f64, float otherwise.
inline DType compute_dtype(CudaDType dtype) { return dtype == CudaDType::F64 ? DType::F64 : DType::F32; }
// Bytes per element of the arrays (the per-row loss is always compute_dtype).
int cuda_dtype_bytes(CudaDType dtype);
// Host conversions for f16 and bf16 arrays, rounding as the kernels do
// (compiler/storage_types.hpp); `dtype` must be one of the two.
unsigned short to_storage_bits(CudaDType dtype, float value);
float from_storage_bits(CudaDType dtype, unsigned short bits);
inline float round_to_storage(CudaDType dtype, float value) {
  return from_storage_bits(dtype, to_storage_bits(dtype, value));
}

enum class CudaLayout { Rows, Warp, Block };
const char* cuda_layout_name(CudaLayout layout);  // "rows", "warp", "block"

struct CudaEmitOptions {
  std::vector<CudaDType> dtypes{CudaDType::F32};  // one set of kernels per dtype
  bool gradients = true;                  // the Loss overload: differentiate the loss
  // Prefix of every symbol; empty: "lossforge_" + the loss name (sanitised).
  // Distinct symbols let several losses share one translation unit.
  std::string symbol;
  // Emit the preamble (semantics + launch struct). A translation unit that
  // holds several losses emits it with the first only.
  bool preamble = true;
  // Blocks of kCudaBlockSize threads each multiprocessor should hold at once
  // (__launch_bounds__'s second argument, which caps registers per thread);
  // 0: the compiler's choice.
  int min_blocks_per_sm = 0;
};

// The kernels of `loss`, differentiated when options.gradients.
std::string emit_cuda(const Loss& loss, const CudaEmitOptions& options = {});
// The kernels of gradient roots built elsewhere (tests, the cached engine).
std::string emit_cuda(const Kernel& kernel, const CudaEmitOptions& options = {});

// The layout a loss is launched with for rows of width `max_width` (0 or 1
// when it has no real[C] input), and the name of that kernel.
CudaLayout cuda_layout(const Loss& loss, long long max_width);
std::string cuda_kernel_name(const std::string& symbol, CudaDType dtype, CudaLayout layout);

}  // namespace lossforge
