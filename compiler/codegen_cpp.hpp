// The C++ code generator: the same row code as the CUDA kernels
// (compiler/codegen_c.hpp), instantiated for the host CPU as a plain loop.
//
// The output is one self-contained C++20 source (no lossforge header needed;
// compiler/semantics.hpp is embedded) defining, per dtype,
//
//   extern "C" double <symbol>_<f32|f64>(const LossforgeLaunch* args,
//                                        long long begin, long long end);
//
// which computes rows [begin, end) of the loss and its gradients into the
// arrays of `args` (as the CUDA kernels do) and returns those rows'
// contribution to the weighted reduction (Σ loss·weight·loss_scale), so
// threads can split a batch and add their results. `lossforge emit --target
// cpp` prints it; `lossforge compile` writes it for training binaries; the
// tests compile it with the system compiler and compare with the interpreter.
#pragma once

#include <string>
#include <vector>

#include "compiler/kernel.hpp"

namespace lossforge {

struct CppEmitOptions {
  std::vector<DType> dtypes{DType::F32};  // one entry point per dtype
  bool gradients = true;                  // the Loss overload: differentiate the loss
  std::string symbol;                     // as CudaEmitOptions::symbol
  bool preamble = true;                   // as CudaEmitOptions::preamble
};

std::string emit_cpp(const Loss& loss, const CppEmitOptions& options = {});
std::string emit_cpp(const Kernel& kernel, const CppEmitOptions& options = {});

std::string cpp_function_name(const std::string& symbol, DType dtype);

}  // namespace lossforge
