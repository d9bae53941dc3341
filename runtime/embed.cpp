// The embedding API (include/lossforge/lossforge.hpp) on top of the compiler
// and the back ends: text -> load_module / load_formula -> a row engine ->
// weights and reduction. Every lossforge exception is turned into a Failure
// value here; nothing throws across the public header.
//
// A row engine computes, for each row, the loss and the gradient of that row's
// loss by each pred input. Validation of inputs, params, weights and the
// reduction live above the engines, so every back end reports the same errors
// and reduces the same way.
#include <lossforge/lossforge.hpp>

#include <cmath>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>

#include "compiler/diagnostics.hpp"
#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/kernel_cache.hpp"

#if LOSSFORGE_HAVE_LLVM
#include <mutex>
#include <type_traits>

#include "compiler/canonical.hpp"
#include "compiler/simplify.hpp"
#include "compiler/codegen_llvm.hpp"
#include "compiler/kernel.hpp"
#include "runtime/llvm_engine.hpp"
#endif

namespace lossforge::embed_impl {

template <class T>
struct RowResults {
  std::vector<T> loss;                  // one per row
  std::vector<std::vector<T>> gradients;  // one per pred input, rows × width; empty without gradients
};

// Inputs already checked against the loss signature: one view per loss input,
// all with `rows` rows.
template <class T>
struct RowBatch {
  std::span<const api::InputView<T>> inputs;
  size_t rows = 0;
  std::span<const double> params;  // one per Loss::params entry
  bool gradients = false;
};

// The evaluation options of a batch.
template <class T>
EvalOptions eval_options(const RowBatch<T>& batch) {
  EvalOptions options;
  options.gradients = batch.gradients;
  options.params.assign(batch.params.begin(), batch.params.end());
  return options;
}
// A batch as the interpreter takes it: arrays that own a copy of the caller's
// views (a copy costs little next to interpreting), and the evaluation options.
template <class T>
std::pair<std::vector<Array<T>>, EvalOptions> engine_inputs(const RowBatch<T>& batch) {
  std::pair<std::vector<Array<T>>, EvalOptions> out;
  auto& [arrays, options] = out;
  arrays.reserve(batch.inputs.size());
  for (const api::InputView<T>& view : batch.inputs)
    arrays.emplace_back(batch.rows, view.width, std::vector<T>(view.values.begin(), view.values.end()));
  options = eval_options(batch);
  return out;
}

class RowEngine {
 public:
  virtual ~RowEngine() = default;
  virtual RowResults<float> evaluate(const RowBatch<float>& batch) const = 0;
  virtual RowResults<double> evaluate(const RowBatch<double>& batch) const = 0;
};

// The reference interpreter: always available, exact, slower.
class InterpreterEngine final : public RowEngine {
 public:
  explicit InterpreterEngine(Loss loss) : loss_(std::move(loss)) {}
  RowResults<float> evaluate(const RowBatch<float>& batch) const override { return run(batch); }
  RowResults<double> evaluate(const RowBatch<double>& batch) const override { return run(batch); }

 private:
  template <class T>
  RowResults<T> run(const RowBatch<T>& batch) const {
    const auto [arrays, options] = engine_inputs(batch);
    Evaluation<T> evaluation = interpret<T>(loss_, arrays, options);
    RowResults<T> out;
    out.loss = std::move(evaluation.loss);
    for (Array<T>& gradient : evaluation.grads) out.gradients.push_back(std::move(gradient.data));
    return out;
  }

  Loss loss_;
};

// ===== LLVM ENGINE =============================================================
// With LLVM, Backend::Auto means the LLVM ORC JIT (runtime/llvm_engine.hpp): one
// fused, vectorised loss+gradient kernel per dtype, compiled on first use and
// kept in the process's kernel cache (memory + disk), so a loss seen before,
// by this process or another, costs a load instead of a compile.
#if LOSSFORGE_HAVE_LLVM
constexpr bool kHaveLlvmEngine = true;

class LlvmEngine final : public RowEngine {
 public:
  LlvmEngine(Loss loss, llvm_codegen::OptLevel level) : loss_(std::move(loss)), level_(level) {}
  RowResults<float> evaluate(const RowBatch<float>& batch) const override { return run(batch); }
  RowResults<double> evaluate(const RowBatch<double>& batch) const override { return run(batch); }

 private:
  template <class T>
  const CompiledLoss& compiled() const {
    constexpr DType dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
    std::lock_guard lock(mutex_);
    std::optional<CompiledLoss>& slot = compiled_[dtype == DType::F32 ? 0 : 1];
    if (slot) return *slot;
    LlvmOptions options;
    options.dtype = dtype;
    options.gradients = true;  // one kernel serves runs with and without gradients
    options.opt_level = level_;
    slot.emplace(CompiledLoss::compile_cached(loss_, options, default_kernel_cache()));
    return *slot;
  }

  // The kernel reads the caller's values where they are (no copy).
  template <class T>
  RowResults<T> run(const RowBatch<T>& batch) const {
    std::vector<ArrayView<T>> views;
    for (const api::InputView<T>& view : batch.inputs)
      views.push_back({view.values.data(), batch.rows, view.width, view.values.size()});
    RowResults<T> out;
    out.loss.resize(batch.rows);
    std::vector<T*> grads;
    if (batch.gradients) {
      out.gradients.reserve(loss_.pred_inputs().size());  // the pointers into them stay valid
      for (size_t index : loss_.pred_inputs()) {
        out.gradients.emplace_back(batch.rows * batch.inputs[index].width);
        grads.push_back(out.gradients.back().data());
      }
    }
    compiled<T>().template evaluate_into<T>(views, eval_options(batch), out.loss.data(), grads);
    return out;
  }

  Loss loss_;
  llvm_codegen::OptLevel level_;
  mutable std::mutex mutex_;
  mutable std::optional<CompiledLoss> compiled_[2];  // f32, f64
};
#else
constexpr bool kHaveLlvmEngine = false;
#endif
// ===============================================================================

std::unique_ptr<const RowEngine> make_engine(api::Backend backend, const Loss& loss, bool quick_compile) {
  switch (backend) {
    case api::Backend::Interpreter:
      return std::make_unique<InterpreterEngine>(loss);
    case api::Backend::Llvm:
#if LOSSFORGE_HAVE_LLVM
      return std::make_unique<LlvmEngine>(loss, quick_compile ? llvm_codegen::OptLevel::Quick
                                                              : llvm_codegen::OptLevel::Full);
#endif
    case api::Backend::Auto:
      break;
  }
  throw std::logic_error("make_engine: no engine for the chosen back end");
}

}  // namespace lossforge::embed_impl

namespace lossforge::api {

using embed_impl::RowEngine;

struct Kernel::Impl {
  ::lossforge::Loss loss;
  std::vector<InputInfo> inputs;
  std::vector<ParamInfo> params;
  Backend backend = Backend::Interpreter;
  std::unique_ptr<const RowEngine> engine;
};

// The one place that builds Kernels (their constructor is private).
struct KernelAccess {
  static Kernel make(std::shared_ptr<const Kernel::Impl> impl) { return Kernel(std::move(impl)); }
};

namespace {

Failure fail(ErrorKind kind, std::string message) { return Failure{kind, std::move(message)}; }

// Runs `body`, turning every exception into a Failure: the API boundary.
template <class Body>
auto guarded(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const CompileError& error) {
    return fail(ErrorKind::Syntax, error.what());
  } catch (const UnavailableError& error) {
    return fail(ErrorKind::Unavailable, error.what());
  } catch (const InputError& error) {
    return fail(ErrorKind::InvalidArgument, error.what());
  } catch (const ::lossforge::Error& error) {
    return fail(ErrorKind::InvalidArgument, error.what());
  } catch (const std::bad_alloc&) {
    return fail(ErrorKind::Internal, "out of memory");
  } catch (const std::exception& error) {
    return fail(ErrorKind::Internal, std::string("internal error (please report): ") + error.what());
  } catch (...) {
    return fail(ErrorKind::Internal, "internal error (please report): unknown exception");
  }
}

InputInfo describe(const LossInput& input) {
  InputInfo info;
  info.name = input.name;
  info.pred = input.pred;
  switch (input.type.kind()) {
    case Type::Kind::Real:
      info.kind = InputKind::Real;
      break;
    case Type::Kind::Vec:
      info.kind = InputKind::Row;
      info.width_name = std::string(input.type.width().str());
      break;
    case Type::Kind::Box:
      info.kind = InputKind::Box;
      break;
  }
  return info;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

Result<Kernel> build_kernel(Loss loss, const CompileOptions& options) {
  Backend backend = options.backend;
  if (backend == Backend::Auto) backend = embed_impl::kHaveLlvmEngine ? Backend::Llvm : Backend::Interpreter;
  if (!backend_available(backend)) {
    return fail(ErrorKind::Unavailable, "the LLVM back end is not built into this lossforge library "
                                        "(use Backend::Interpreter or Backend::Auto)");
  }
  auto impl = std::make_shared<Kernel::Impl>();
  for (const LossInput& input : loss.inputs) impl->inputs.push_back(describe(input));
  for (const LossParam& param : loss.params) impl->params.push_back({param.name, param.value});
  impl->backend = backend;
  impl->engine = embed_impl::make_engine(backend, loss, options.quick_compile);
  impl->loss = std::move(loss);
  return KernelAccess::make(std::move(impl));
}

Result<Kernel> compile_source(const SourcePtr& source, const CompileOptions& options) {
  if (!options.preset.empty()) {
    const Preset* preset = find_preset(options.preset);
    if (!preset) {
      return fail(ErrorKind::InvalidArgument,
                  "unknown preset '" + options.preset + "' (one of: " + preset_names() + ")");
    }
    return build_kernel(load_formula(source, *preset, options.loss.empty() ? "formula" : options.loss), options);
  }
  Module module = load_module(source);
  std::vector<std::string> names;
  for (const Loss& loss : module.losses) names.push_back(loss.name);
  if (options.loss.empty()) {
    if (module.losses.empty()) return fail(ErrorKind::NotFound, source->name() + ": defines no loss");
    if (module.losses.size() > 1) {
      return fail(ErrorKind::InvalidArgument, source->name() + " defines " + std::to_string(names.size()) +
                                                  " losses (" + join_names(names) +
                                                  "): name one in CompileOptions::loss");
    }
    return build_kernel(module.losses.front(), options);
  }
  const Loss* loss = module.find(options.loss);
  if (!loss) {
    return fail(ErrorKind::NotFound, source->name() + ": no loss named '" + options.loss + "'" +
                                         (names.empty() ? std::string(" (it defines none)")
                                                        : " (it defines: " + join_names(names) + ")"));
  }
  return build_kernel(*loss, options);
}

// Checks the inputs against the signature and returns the row count.
template <class T>
Result<size_t> check_inputs(const Loss& loss, std::span<const InputView<T>> inputs) {
  if (inputs.size() != loss.inputs.size()) {
    std::vector<std::string> names;
    for (const LossInput& input : loss.inputs) names.push_back(input.name);
    return fail(ErrorKind::InvalidArgument, "loss '" + loss.name + "' takes " + std::to_string(names.size()) +
                                                " inputs (" + join_names(names) + "), got " +
                                                std::to_string(inputs.size()));
  }
  std::optional<size_t> rows;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LossInput& declared = loss.inputs[i];
    const InputView<T>& view = inputs[i];
    const std::string what = "input '" + declared.name + "' (" + declared.type.str() + ")";
    const size_t needed = declared.type.is_box() ? 4 : declared.type.is_real() ? 1 : 0;  // 0: any C
    if (view.width == 0) return fail(ErrorKind::InvalidArgument, what + " has width 0");
    if (needed != 0 && view.width != needed) {
      return fail(ErrorKind::InvalidArgument,
                  what + " needs width " + std::to_string(needed) + ", got " + std::to_string(view.width));
    }
    if (view.values.size() % view.width != 0) {
      return fail(ErrorKind::InvalidArgument, what + " holds " + std::to_string(view.values.size()) +
                                                  " values, not a multiple of its width " +
                                                  std::to_string(view.width));
    }
    if (!view.values.empty() && view.values.data() == nullptr) {
      return fail(ErrorKind::InvalidArgument, what + " has values but no data pointer");
    }
    const size_t these = view.values.size() / view.width;
    if (rows && *rows != these) {
      return fail(ErrorKind::InvalidArgument, what + " has " + std::to_string(these) + " rows but input '" +
                                                  loss.inputs[0].name + "' has " + std::to_string(*rows));
    }
    rows = these;
    // Inputs that spell the same width C must agree on it.
    if (declared.type.is_vec()) {
      for (size_t j = 0; j < i; ++j) {
        if (loss.inputs[j].type == declared.type && inputs[j].width != view.width) {
          return fail(ErrorKind::InvalidArgument,
                      what + " has width " + std::to_string(view.width) + " but input '" + loss.inputs[j].name +
                          "' of the same type has " + std::to_string(inputs[j].width));
        }
      }
    }
  }
  return rows.value_or(0);
}

Result<std::vector<double>> resolve_params(const Loss& loss,
                                           const std::vector<std::pair<std::string, double>>& overrides) {
  std::vector<double> values;
  for (const LossParam& param : loss.params) values.push_back(param.value);
  for (const auto& [name, value] : overrides) {
    std::optional<size_t> index = loss.find_param(name);
    if (!index) {
      std::vector<std::string> names;
      for (const LossParam& param : loss.params) names.push_back(param.name);
      return fail(ErrorKind::InvalidArgument, "loss '" + loss.name + "' has no param '" + name + "'" +
                                                  (names.empty() ? std::string(" (it has none)")
                                                                 : " (it has: " + join_names(names) + ")"));
    }
    if (!std::isfinite(value)) {
      return fail(ErrorKind::InvalidArgument, "param '" + name + "' must be finite");
    }
    values[*index] = value;
  }
  return values;
}

template <class T>
Result<Output<T>> run_kernel(const Kernel::Impl& impl, std::span<const InputView<T>> inputs,
                             const RunOptions<T>& options) {
  const Loss& loss = impl.loss;
  Result<size_t> rows = check_inputs(loss, inputs);
  if (!rows) return rows.error();
  Result<std::vector<double>> params = resolve_params(loss, options.params);
  if (!params) return params.error();
  if (!options.weights.empty() && options.weights.size() != *rows) {
    return fail(ErrorKind::InvalidArgument, "weights hold " + std::to_string(options.weights.size()) +
                                                " values for " + std::to_string(*rows) + " rows");
  }
  if (options.reduction == Reduction::SumOverAvgFactor &&
      !(std::isfinite(options.avg_factor) && options.avg_factor >= 0)) {
    return fail(ErrorKind::InvalidArgument, "avg_factor must be finite and >= 0");
  }

  embed_impl::RowBatch<T> batch{inputs, *rows, *params, options.gradients};
  embed_impl::RowResults<T> per_row = impl.engine->evaluate(batch);

  // Weights and reduction, identical for every back end. Sums accumulate in
  // double so that float losses over millions of rows keep their precision.
  auto weight = [&](size_t r) -> double { return options.weights.empty() ? 1.0 : double(options.weights[r]); };
  double scale = 1;  // d(result) / d(weighted row loss)
  Output<T> out;
  if (options.reduction == Reduction::None) {
    out.loss = std::move(per_row.loss);
    if (!options.weights.empty()) {
      for (size_t r = 0; r < *rows; ++r) out.loss[r] = static_cast<T>(weight(r) * out.loss[r]);
    }
  } else {
    double total = 0;
    for (size_t r = 0; r < *rows; ++r) total += weight(r) * per_row.loss[r];
    switch (options.reduction) {
      case Reduction::Mean:
        scale = *rows == 0 ? 0.0 : 1.0 / static_cast<double>(*rows);
        break;
      case Reduction::SumOverAvgFactor:
        // mmdetection's weight_reduce_loss adds float32's epsilon, whatever the dtype.
        scale = 1.0 / (options.avg_factor + 1.1920928955078125e-07);
        break;
      case Reduction::Sum:
      case Reduction::None:
        break;
    }
    out.loss = {static_cast<T>(total * scale)};
  }
  out.gradients = std::move(per_row.gradients);
  if (!options.weights.empty() || scale != 1) {
    for (std::vector<T>& gradient : out.gradients) {
      const size_t width = *rows == 0 ? 0 : gradient.size() / *rows;
      for (size_t r = 0; r < *rows; ++r) {
        const double factor = weight(r) * scale;
        for (size_t c = 0; c < width; ++c) gradient[r * width + c] = static_cast<T>(factor * gradient[r * width + c]);
      }
    }
  }
  return out;
}

}  // namespace

std::string_view version() noexcept { return ::lossforge::lossforge_version(); }

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::Syntax:
      return "syntax";
    case ErrorKind::NotFound:
      return "not found";
    case ErrorKind::InvalidArgument:
      return "invalid argument";
    case ErrorKind::Unavailable:
      return "unavailable";
    case ErrorKind::Internal:
      return "internal";
  }
  return "internal";
}

bool backend_available(Backend backend) noexcept {
  switch (backend) {
    case Backend::Auto:
    case Backend::Interpreter:
      return true;
    case Backend::Llvm:
      return embed_impl::kHaveLlvmEngine;
  }
  return false;
}

const std::string& Kernel::name() const noexcept { return impl_->loss.name; }
const std::vector<InputInfo>& Kernel::inputs() const noexcept { return impl_->inputs; }
const std::vector<ParamInfo>& Kernel::params() const noexcept { return impl_->params; }
Backend Kernel::backend() const noexcept { return impl_->backend; }

std::string Kernel::text() const {
  // Printing can only fail by running out of memory; the API must not throw.
  try {
    return to_text(impl_->loss);
  } catch (...) {
    return {};
  }
}

Result<Output<float>> Kernel::run(std::span<const InputView<float>> inputs, const RunOptions<float>& options) const {
  return guarded([&] { return run_kernel(*impl_, inputs, options); });
}
Result<Output<double>> Kernel::run(std::span<const InputView<double>> inputs,
                                   const RunOptions<double>& options) const {
  return guarded([&] { return run_kernel(*impl_, inputs, options); });
}

Result<Kernel> compile(std::string_view text, const CompileOptions& options) {
  return guarded([&] {
    return compile_source(SourceFile::from_text(options.source_name, std::string(text)), options);
  });
}

Result<Kernel> compile_file(const std::string& path, const CompileOptions& options) {
  return guarded([&]() -> Result<Kernel> {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) return fail(ErrorKind::NotFound, path + ": no such file");
    SourcePtr source;
    try {
      source = SourceFile::read(path, limits::kMaxSourceBytes);
    } catch (const InputError& read_error) {
      return fail(ErrorKind::NotFound, read_error.what());
    }
    return compile_source(source, options);
  });
}

}  // namespace lossforge::api
