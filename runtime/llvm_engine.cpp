// LLJIT (ORC) loading of the object code compiler/codegen_llvm.cpp emits.
//
// Each CompiledLoss owns one LLJIT instance holding exactly its object: no
// shared JIT state, so compiles in different threads never contend and
// destroying a CompiledLoss frees its code. Symbols the object needs (libm's
// expf, tanhf, ...) come from the process; libmvec's vector variants
// (_ZGVeN16v_expf, _ZGVdN8v_expf, ...) from libmvec.so.1, which the code
// generator only uses when that library can be loaded.
//
// LLVM is built without exceptions: every llvm::Error and Expected is turned
// into a lossforge::Error here, at the boundary, and nothing throws through
// LLVM frames.
#include "runtime/llvm_engine.hpp"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "compiler/canonical.hpp"
#include "compiler/codegen_llvm.hpp"
#include "compiler/error.hpp"
#include "compiler/simplify.hpp"
#include "runtime/input_check.hpp"
#include "runtime/thread_pool.hpp"

namespace lossforge {
namespace {

std::string describe(llvm::Error error) { return llvm::toString(std::move(error)); }

template <class V>
V take(llvm::Expected<V> value, const std::string& what) {
  if (!value) throw Error("LLVM JIT: " + what + ": " + describe(value.takeError()));
  return std::move(*value);
}

void check(llvm::Error error, const std::string& what) {
  if (error) throw Error("LLVM JIT: " + what + ": " + describe(std::move(error)));
}

// Thread chunks start at multiples of this many rows, so each chunk's vector
// loop covers the same rows as in a one-thread run: results do not depend on
// the thread count, bit for bit.
constexpr size_t kRowAlignment = 256;

}  // namespace

struct CompiledLoss::Impl {
  Loss loss;
  LlvmOptions options;
  bool gradients = false;
  std::string object;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  void* kernel = nullptr;
  llvm_codegen::ScratchFunction scratch_size = nullptr;

  void link() {
    jit = take(llvm::orc::LLJITBuilder().create(), "cannot create the JIT");
    llvm::orc::JITDylib& library = jit->getMainJITDylib();
    const char prefix = jit->getDataLayout().getGlobalPrefix();
    library.addGenerator(
        take(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(prefix), "cannot search this process"));
    // libmvec may be absent: the code generator then calls no vector variants.
    if (auto mvec = llvm::orc::DynamicLibrarySearchGenerator::Load("libmvec.so.1", prefix))
      library.addGenerator(std::move(*mvec));
    else
      llvm::consumeError(mvec.takeError());
    check(jit->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(object, "lossforge." + loss.name)),
          "cannot load the object code of '" + loss.name + "'");
    kernel = take(jit->lookup(llvm_codegen::kKernelSymbol), "the object code has no kernel").toPtr<void*>();
    scratch_size = take(jit->lookup(llvm_codegen::kScratchSymbol), "the object code has no scratch size function")
                       .toPtr<llvm_codegen::ScratchFunction>();
  }

  size_t thread_count() const {
    if (options.threads > 0) return size_t(options.threads);
    return std::max(1u, std::thread::hardware_concurrency());
  }

  template <class T>
  Evaluation<T> evaluate(std::span<const Array<T>> inputs, const EvalOptions& eval) const {
    const std::vector<ArrayView<T>> views = views_of(inputs);
    const BatchShape shape = check_call<T>(views, eval);
    Evaluation<T> result;
    result.loss.resize(shape.rows);
    std::vector<T*> grad_rows;
    if (eval.gradients)
      for (size_t index : loss.pred_inputs()) {
        result.grads.emplace_back(shape.rows, inputs[index].width);
        grad_rows.push_back(result.grads.back().data.data());
      }
    run<T>(views, shape, eval, result.loss.data(), grad_rows);
    return result;
  }

  template <class T>
  void evaluate_into(std::span<const ArrayView<T>> inputs, const EvalOptions& eval, T* loss_out,
                     std::span<T* const> grads_out) const {
    const BatchShape shape = check_call<T>(inputs, eval);
    if (eval.gradients && grads_out.size() != loss.pred_inputs().size())
      throw std::invalid_argument("CompiledLoss::evaluate_into: '" + loss.name + "' has " +
                                  std::to_string(loss.pred_inputs().size()) + " pred inputs but got " +
                                  std::to_string(grads_out.size()) + " gradient buffers");
    run<T>(inputs, shape, eval, loss_out, eval.gradients ? grads_out : std::span<T* const>{});
  }

  template <class T>
  BatchShape check_call(std::span<const ArrayView<T>> inputs, const EvalOptions& eval) const {
    if ((options.dtype == DType::F32) != std::is_same_v<T, float>)
      throw std::invalid_argument("CompiledLoss::evaluate: '" + loss.name + "' was compiled for " +
                                  dtype_name(options.dtype));
    if (eval.gradients && !gradients && !loss.pred_inputs().empty())
      throw std::invalid_argument("CompiledLoss::evaluate: '" + loss.name + "' was compiled without gradients");
    return check_inputs<T>(loss, inputs);
  }

  // The kernel over checked inputs, split over threads. `grads` holds one
  // buffer per pred input, or none: a gradient kernel always writes its
  // gradients, then into buffers that are dropped.
  template <class T>
  void run(std::span<const ArrayView<T>> inputs, const BatchShape& shape, const EvalOptions& eval, T* loss_out,
           std::span<T* const> grads) const {
    if (shape.rows == 0) return;
    const std::vector<double> params = param_values(loss, eval);
    std::vector<const T*> input_rows;
    std::vector<int64_t> widths;
    for (const ArrayView<T>& a : inputs) {
      input_rows.push_back(a.data);
      widths.push_back(int64_t(a.width));
    }
    std::vector<T*> grad_rows(grads.begin(), grads.end());
    std::vector<std::vector<T>> dropped;
    if (gradients && grad_rows.empty())
      for (size_t index : loss.pred_inputs()) {
        dropped.emplace_back(shape.rows * inputs[index].width);
        grad_rows.push_back(dropped.back().data());
      }

    // Split into chunks of whole kRowAlignment blocks, at most one per thread.
    const size_t rows = shape.rows;
    const size_t wanted = std::min(thread_count(), std::max<size_t>(1, rows / std::max<size_t>(1, options.min_rows_per_thread)));
    const size_t blocks = (rows + kRowAlignment - 1) / kRowAlignment;
    const size_t tasks = std::max<size_t>(1, std::min(wanted, blocks));
    const size_t blocks_per_task = (blocks + tasks - 1) / tasks;
    // Work space before any thread starts, so that no task can fail.
    const size_t scratch_values = size_t(scratch_size(widths.data()));
    std::vector<std::vector<T>> scratch(tasks, std::vector<T>(std::max<size_t>(scratch_values, 1)));
    auto kernel_function = llvm_codegen::KernelFunction<T>(kernel);
    parallel_for(tasks, tasks, [&](size_t t) {
      const size_t begin = std::min(rows, t * blocks_per_task * kRowAlignment);
      const size_t end = std::min(rows, (t + 1) * blocks_per_task * kRowAlignment);
      if (begin < end)
        kernel_function(input_rows.data(), widths.data(), loss_out, grad_rows.data(), params.data(), int64_t(begin),
                        int64_t(end), scratch[t].data());
    });
  }
};

CompiledLoss::CompiledLoss(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledLoss::CompiledLoss(CompiledLoss&&) noexcept = default;
CompiledLoss& CompiledLoss::operator=(CompiledLoss&&) noexcept = default;
CompiledLoss::~CompiledLoss() = default;

CompiledLoss CompiledLoss::compile(const Loss& loss, const LlvmOptions& options) {
  return compile(options.gradients ? gradient_kernel(loss, differentiate(loss)) : forward_kernel(loss), options);
}

CompiledLoss CompiledLoss::compile(const Kernel& kernel, const LlvmOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->loss = kernel.loss;
  impl->options = options;
  impl->gradients = kernel.has_gradients();
  impl->options.gradients = impl->gradients;
  impl->object = llvm_codegen::emit_object(kernel, options.dtype, options.opt_level);
  impl->link();
  return CompiledLoss(std::move(impl));
}

CompiledLoss CompiledLoss::load(const Loss& loss, const LlvmOptions& options, std::string_view object_code) {
  auto impl = std::make_unique<Impl>();
  impl->loss = loss;
  impl->options = options;
  // A loss without pred inputs has no gradients to compute, compiled or not.
  impl->gradients = options.gradients && !loss.pred_inputs().empty();
  impl->object = std::string(object_code);
  impl->link();
  return CompiledLoss(std::move(impl));
}

// Everything the object code depends on. The body's canonical hash names the
// formula; what it does not show (input types, the pred set, whether the
// gradients are compiled in) goes into `variant`.
static KernelKey cache_key(const Loss& canonical, const LlvmOptions& options) {
  KernelKey key;
  key.loss_hash = canonical_hash(canonical.body);
  key.backend = "llvm";
  key.target = llvm_codegen::host_target_description();
  key.dtype = options.dtype == DType::F32 ? "f32" : "f64";
  key.compiler_version = llvm_codegen::compiler_version();
  for (const LossInput& input : canonical.inputs) key.variant += input.type.str() + (input.pred ? " pred;" : ";");
  // Param defaults: the code has the rows specialised to them (pow exponents).
  key.variant += "params=" + std::to_string(canonical.params.size());
  for (const LossParam& param : canonical.params) {
    char value[32];
    std::snprintf(value, sizeof value, "%a", param.value);  // exact
    key.variant += "," + param.name + "=" + value;
  }
  key.variant += options.gradients ? ";gradients" : ";forward";
  key.variant += options.opt_level == llvm_codegen::OptLevel::Full ? ";full" : ";quick";
  return key;
}

CompiledLoss CompiledLoss::compile_cached(const Loss& loss, const LlvmOptions& options, KernelCache& cache) {
  const Loss canonical = simplify(loss);
  const KernelKey key = cache_key(canonical, options);
  if (std::optional<std::string> object = cache.lookup(key)) {
    try {
      return load(canonical, options, *object);
    } catch (const std::exception&) {
      // Object code that passed the cache's checksum but does not link (e.g.
      // written by an incompatible code generator under the same version
      // string): compile afresh and replace it.
    }
  }
  CompiledLoss compiled = compile(canonical, options);
  cache.store(key, compiled.object_code());
  return compiled;
}

template <class T>
Evaluation<T> CompiledLoss::evaluate(std::span<const Array<T>> inputs, const EvalOptions& options) const {
  return impl_->evaluate<T>(inputs, options);
}

template <class T>
void CompiledLoss::evaluate_into(std::span<const ArrayView<T>> inputs, const EvalOptions& options, T* loss,
                                 std::span<T* const> grads) const {
  impl_->evaluate_into<T>(inputs, options, loss, grads);
}

const Loss& CompiledLoss::loss() const { return impl_->loss; }
const LlvmOptions& CompiledLoss::options() const { return impl_->options; }
bool CompiledLoss::has_gradients() const { return impl_->gradients; }
std::string_view CompiledLoss::object_code() const { return impl_->object; }

template Evaluation<float> CompiledLoss::evaluate(std::span<const Array<float>>, const EvalOptions&) const;
template Evaluation<double> CompiledLoss::evaluate(std::span<const Array<double>>, const EvalOptions&) const;
template void CompiledLoss::evaluate_into(std::span<const ArrayView<float>>, const EvalOptions&, float*,
                                          std::span<float* const>) const;
template void CompiledLoss::evaluate_into(std::span<const ArrayView<double>>, const EvalOptions&, double*,
                                          std::span<double* const>) const;

}  // namespace lossforge
