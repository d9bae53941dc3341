// `lossforge emit`: the code a back end generates for a loss, as text.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/loss_source.hpp"
#include "compiler/codegen_cpp.hpp"
#include "compiler/codegen_cuda.hpp"
#include "compiler/kernel.hpp"
#include "compiler/presets.hpp"
#if LOSSFORGE_HAVE_LLVM
#include "compiler/codegen_llvm.hpp"
#endif

namespace lossforge::cli {
namespace {

struct EmitArgs {
  LossArgs loss;
  std::string target = "llvm";
  std::string dtype = "f32";
  bool optimized = false;
  bool forward_only = false;
  bool as_written = false;
};

// What eval, the search and the LibTorch op compile: the loss simplified;
// with --as-written, the formula exactly as the file has it.
Kernel kernel_to_emit(const EmitArgs& args, const Loss& loss) {
  if (!args.as_written) return user_kernel(loss, !args.forward_only);
  return args.forward_only ? forward_kernel(loss) : gradient_kernel(loss, differentiate(loss));
}

int run_emit(const EmitArgs& args) {
  const CudaDType cuda_dtype = *find_cuda_dtype(args.dtype);
  const DType dtype = compute_dtype(cuda_dtype);
  if (args.target != "cuda" && cuda_dtype_bytes(cuda_dtype) == 2)
    throw UsageError("--dtype " + args.dtype + ": 16-bit kernels are the CUDA target's (--target cuda)");
  // CUDA and C++ are source text: no toolkit is needed to print them.
  if (args.target == "cuda" || args.target == "cpp") {
    const LossSet losses = load_losses(args.loss);
    const Loss& loss = select_loss(losses, args.loss.loss_name);
    const Kernel kernel = kernel_to_emit(args, loss);
    if (args.target == "cuda") {
      CudaEmitOptions options;
      options.dtypes = {cuda_dtype};
      std::cout << emit_cuda(kernel, options);
    } else {
      CppEmitOptions options;
      options.dtypes = {dtype};
      std::cout << emit_cpp(kernel, options);
    }
    return exit_code::kOk;
  }
#if LOSSFORGE_HAVE_LLVM
  const LossSet losses = load_losses(args.loss);
  const Loss& loss = select_loss(losses, args.loss.loss_name);
  const Kernel kernel = kernel_to_emit(args, loss);
  std::cout << llvm_codegen::emit_ir(kernel, dtype, args.optimized);
  return exit_code::kOk;
#else
  throw UnavailableError("target 'llvm' is not built into this lossforge (it was built without LLVM 16)");
#endif
}

}  // namespace

Command add_emit_command(CLI::App& parent) {
  auto args = std::make_shared<EmitArgs>();
  CLI::App* app = parent.add_subcommand("emit", "Print the code a back end generates for a loss (LLVM IR, CUDA or C++ source)");
  add_loss_options(*app, args->loss, "Which loss of the file (needed when it defines several)");
  app->add_option("--target", args->target, "Code generator")
      ->check(CLI::IsMember({"llvm", "cuda", "cpp"}))
      ->capture_default_str();
  app->add_option("--dtype", args->dtype, "Floating-point type of the kernel (f16 and bf16: CUDA, float arithmetic)")
      ->check(CLI::IsMember({"f32", "f64", "f16", "bf16"}))
      ->capture_default_str();
  app->add_flag("--optimized", args->optimized, "LLVM: after the optimisation passes for this CPU (vectorised), not as generated");
  app->add_flag("--forward-only", args->forward_only, "The loss alone, without its gradients");
  app->add_flag("--as-written", args->as_written,
                "Code for the formula as written, skipping the simplifier (every back end simplifies first)");
  app->footer(
      "Every target computes the loss of each row and the gradients of its pred inputs in one pass.\n"
      "The code is that of the simplified loss, as eval, search, train and compile use it (--as-written: not simplified).\n"
      "llvm: void lossforge_kernel(const T* const* inputs, const int64_t* widths, T* loss, T* const* grads,\n"
      "                            const double* params, int64_t begin, int64_t end, T* scratch)\n"
      "cuda: self-contained CUDA C++ for NVRTC or nvcc: extern \"C\" __global__ kernels\n"
      "      <loss>_<dtype>_rows (element-wise, box) or _warp/_block (real[C] rows), taking a LossforgeLaunch\n"
      "      (inputs, per-row loss, gradients, weights, reduction total and scales)\n"
      "cpp:  the same row code for the host: extern \"C\" double <loss>_<dtype>(const LossforgeLaunch*, begin, end)\n");
  return {app, [args] { return run_emit(*args); }};
}

}  // namespace lossforge::cli
