// `lossforge emit`: the code a back end generates for a loss, as text.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/loss_source.hpp"
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
};

int run_emit(const EmitArgs& args) {
  // Targets are checked before the loss is read: a missing one fails fast.
  if (args.target != "llvm")
    throw UnavailableError("target '" + args.target + "' is not built yet (available: llvm)");
#if LOSSFORGE_HAVE_LLVM
  const LossSet losses = load_losses(args.loss);
  const Loss& loss = select_loss(losses, args.loss.loss_name);
  const Kernel kernel = args.forward_only ? forward_kernel(loss) : gradient_kernel(loss, differentiate(loss));
  std::cout << llvm_codegen::emit_ir(kernel, args.dtype == "f64" ? DType::F64 : DType::F32, args.optimized);
  return exit_code::kOk;
#else
  throw UnavailableError("target 'llvm' is not built into this lossforge (it was built without LLVM 16)");
#endif
}

}  // namespace

Command add_emit_command(CLI::App& parent) {
  auto args = std::make_shared<EmitArgs>();
  CLI::App* app = parent.add_subcommand("emit", "Print the code a back end generates for a loss (LLVM IR)");
  add_loss_options(*app, args->loss, "Which loss of the file (needed when it defines several)");
  app->add_option("--target", args->target, "Code generator")
      ->check(CLI::IsMember({"llvm", "cuda", "cpp"}))
      ->capture_default_str();
  app->add_option("--dtype", args->dtype, "Floating-point type of the kernel")
      ->check(CLI::IsMember({"f32", "f64"}))
      ->capture_default_str();
  app->add_flag("--optimized", args->optimized, "After the O3 pipeline for this CPU (vectorised), not as generated");
  app->add_flag("--forward-only", args->forward_only, "The loss alone, without its gradients");
  app->footer(
      "The kernel computes the loss of rows [begin, end) and the gradients of its pred inputs in one pass:\n"
      "  void lossforge_kernel(const T* const* inputs, const int64_t* widths, T* loss, T* const* grads,\n"
      "                        const double* params, int64_t begin, int64_t end, T* scratch)\n");
  return {app, [args] { return run_emit(*args); }};
}

}  // namespace lossforge::cli
