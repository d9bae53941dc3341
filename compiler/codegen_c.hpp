// The C-family expression emitter shared by the CUDA and C++ code generators:
// a Kernel (loss body + gradient roots) -> the text of one row function,
// compiled for the device by NVRTC/nvcc (compiler/codegen_cuda.hpp) and for
// the host by any C++20 compiler (compiler/codegen_cpp.hpp).
//
// The generated code calls compiler/semantics.hpp op by op, so the CPU, LLVM
// and CUDA back ends agree with the interpreter: element-wise values are the
// very same functions; row reductions add in column order on the host (as the
// interpreter does) and as a tree across lanes on the device.
//
//   template <class T, class L, class S = T>
//   LF_HD inline T <symbol>_row(const S* in0, ..., const long long* widths,
//                               const double* params, T gscale, S* g0, ...);
//
// T is the compute type, S the element type of the arrays: T, or a 16-bit
// storage type of compiler/storage_types.hpp read as and assigned from float.
// in_i points at row values of input i (1 for real, 4 for box, widths[i] for
// real[C]); g_k at the row of the k-th pred input's gradient (null: not
// stored), which receives d loss / d input times gscale; the loss is returned.
// L is the lane policy of the preamble (namespace lossforge::gen): Serial (one
// thread does the row), Warp or Block (the columns of a real[C] row are strided over the lanes,
// reductions combine across them; real and box gradients are written by the
// leader lane only). A real[C] intermediate is never stored: its column value
// is recomputed inside each loop that needs it, so rows of any width need no
// scratch memory.
#pragma once

#include <string>

#include "compiler/kernel.hpp"

namespace lossforge::c_codegen {

// Limits of LossforgeLaunch (fixed-size arrays passed by value to kernels).
inline constexpr size_t kMaxInputs = 16;
inline constexpr size_t kMaxParams = 32;

// The host's view of LossforgeLaunch, the argument block of every generated
// entry point (host loop or CUDA kernel, passed by value to kernels): field
// for field the struct launch_struct() declares in the generated code.
struct LaunchBlock {
  const void* inputs[kMaxInputs] = {};  // input i: rows x widths[i] values of the kernel's dtype, row-major
  void* loss = nullptr;                 // per-row loss x weight, or null
  void* grads[kMaxInputs] = {};         // gradient of the k-th pred input, shaped like it, or null
  const void* weight = nullptr;         // per-row weights, or null (all 1)
  double* total = nullptr;              // += sum of loss x weight x loss_scale, or null
  long long rows = 0;
  long long widths[kMaxInputs] = {};    // values per row: 1 real, 4 box, C real[C]
  double params[kMaxParams] = {};       // one per loss param
  double loss_scale = 1;                // 1 sum, 1/rows mean, 1/avg_factor
  double grad_scale = 1;                // gradients are d loss / d input x weight x grad_scale
};
static_assert(sizeof(LaunchBlock) == 688, "LaunchBlock must match LossforgeLaunch of codegen_c.cpp");

// The text every translation unit starts with, guarded so that several
// generated files may be included together: compiler/semantics.hpp, the
// LossforgeLaunch argument block and the lane policies.
std::string preamble();

// The LossforgeLaunch struct alone (guarded by LOSSFORGE_LAUNCH_DEFINED), for
// headers of ahead-of-time compiled losses.
std::string launch_struct();

// compiler/semantics.hpp as text (embedded at build time).
const std::string& semantics_text();
// compiler/storage_types.hpp as text (embedded at build time).
const std::string& storage_types_text();

// "lossforge_" + the loss name with every character outside [A-Za-z0-9_] as '_'.
std::string default_symbol(const std::string& loss_name);

// Throws InputError when the loss exceeds the limits above.
void check_limits(const Loss& loss);

// True when some input is real[C] (the row function loops over columns).
bool has_columns(const Loss& loss);

// The row function of `kernel` named <symbol>_row. Throws std::invalid_argument
// for a malformed kernel (as the LLVM code generator does).
std::string row_function(const Kernel& kernel, const std::string& symbol);

// A call of the row function for row `row` (a C++ expression of type long long)
// of the launch block `args` (an lvalue of type LossforgeLaunch), with lane
// policy `lanes`, gradient scale `gscale` and T already a typedef in scope.
// Inputs and gradient rows are addressed from the launch block's pointers as
// arrays of `storage` (T, or a 16-bit type of compiler/storage_types.hpp).
// The params are `params` (an array of T or double), or the launch block's.
std::string row_call(const Kernel& kernel, const std::string& symbol, const std::string& lanes,
                     const std::string& args, const std::string& row, const std::string& gscale,
                     const std::string& storage = "T", const std::string& params = "");

}  // namespace lossforge::c_codegen
