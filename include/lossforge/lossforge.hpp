// lossforge embedding API: compile a loss written as text into a kernel and run
// it on your arrays, from any C++20 program.
//
//   #include <lossforge/lossforge.hpp>
//
//   namespace lf = lossforge::api;
//   lf::Result<lf::Kernel> focal = lf::compile_file("focal.loss");
//   if (!focal) { std::cerr << focal.error().message << "\n"; return 1; }
//   std::vector<float> logits = {...}, targets = {...};
//   lf::RunOptions<float> options;
//   options.reduction = lf::Reduction::Mean;
//   auto out = focal->run({{logits}, {targets}}, options);   // inputs in declaration order
//   if (out) step(out->loss[0], out->gradients[0]);             // d(mean loss) / d logits
//
// This header is the whole public surface: it names no compiler, LLVM or ANTLR
// type (everything is in lossforge::api, apart from the library's internal
// names in lossforge::, which change freely), and the library behind it is a shared library exporting only what is
// declared here. Nothing here throws: every failure comes back as a Failure
// value inside a Result. Kernels are immutable values; copying one is cheap,
// and one kernel may run on many threads at once.
//
// Back ends: the LLVM JIT (native, vectorised code) when the library was built
// with LLVM, otherwise the reference interpreter; both give the same results
// within float rounding. Backend::Auto picks the fastest one available.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#if defined(__GNUC__) || defined(__clang__)
#define LOSSFORGE_API __attribute__((visibility("default")))
#else
#define LOSSFORGE_API
#endif

namespace lossforge::api {

// Bumped when this header changes incompatibly.
inline constexpr int kApiVersion = 1;

// The library's version, e.g. "0.1.0".
LOSSFORGE_API std::string_view version() noexcept;

// ---- errors as values --------------------------------------------------------

enum class ErrorKind {
  Syntax,           // the loss text does not parse or type-check; message holds file:line:col diagnostics
  NotFound,         // no such file, or no loss of the requested name in the text
  InvalidArgument,  // wrong number or shape of inputs, unknown param, bad weights or options
  Unavailable,      // the requested back end is not built into this library
  Internal,         // a bug in lossforge (please report it), or out of memory
};

// "syntax", "not found", "invalid argument", "unavailable", "internal".
LOSSFORGE_API std::string_view to_string(ErrorKind kind) noexcept;

struct Failure {
  ErrorKind kind = ErrorKind::Internal;
  std::string message;  // complete; the first line is a one-line summary
};

// Either a T or a Failure. Check before you look inside: value() and error()
// on the wrong alternative print the failure and abort (no exception leaves
// this API).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Failure failure) : state_(std::in_place_index<1>, std::move(failure)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(checked_value()); }
  const T& value() const& { return std::get<0>(checked_value()); }
  T&& value() && { return std::get<0>(std::move(checked_value())); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const& { return ok() ? std::get<0>(state_) : std::move(fallback); }

  const Failure& error() const {
    if (ok()) die("error() called on a Result that holds a value");
    return std::get<1>(state_);
  }

 private:
  [[noreturn]] static void die(const char* what) {
    std::fprintf(stderr, "lossforge: %s\n", what);
    std::abort();
  }
  std::variant<T, Failure>& checked_value() {
    if (!ok()) {
      std::fprintf(stderr, "lossforge: value() called on a failed Result: %s\n", std::get<1>(state_).message.c_str());
      std::abort();
    }
    return state_;
  }
  const std::variant<T, Failure>& checked_value() const { return const_cast<Result*>(this)->checked_value(); }

  std::variant<T, Failure> state_;
};

// Success without a value, or a Failure.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure failure) : failure_(std::make_shared<const Failure>(std::move(failure))) {}
  bool ok() const noexcept { return failure_ == nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  const Failure& error() const {
    if (ok()) {
      std::fprintf(stderr, "lossforge: error() called on a Result that succeeded\n");
      std::abort();
    }
    return *failure_;
  }

 private:
  std::shared_ptr<const Failure> failure_;
};

// ---- describing a kernel -----------------------------------------------------

enum class Backend {
  Auto,         // LLVM when built in, else the interpreter
  Interpreter,  // the reference interpreter: exact, slower
  Llvm,         // the LLVM ORC JIT: fused native loss + gradient
};

// Whether this library can run `backend` (Auto and Interpreter: always).
LOSSFORGE_API bool backend_available(Backend backend) noexcept;

enum class InputKind {
  Real,  // one value per row
  Row,   // real[C]: C values per row (C is bound by the data)
  Box,   // four values per row: x1, y1, x2, y2
};

struct InputInfo {
  std::string name;
  InputKind kind = InputKind::Real;
  std::string width_name;  // "C" for real[C]; inputs with the same name share the width; empty otherwise
  bool pred = false;       // gradients are computed for exactly the pred inputs
};

struct ParamInfo {
  std::string name;
  double default_value = 0;
};

// ---- running a kernel --------------------------------------------------------

// One input: `rows × width` values, row-major. width is 1 for `real`, 4 for
// `box`, C for `real[C]`; every input of one call has the same number of rows.
template <class T>
struct InputView {
  std::span<const T> values;
  size_t width = 1;
};

// How per-row losses become the result (as mmdetection's weight_reduce_loss):
// with weights w (all 1 without weights) and N rows,
//   None              loss[r] = w[r]·l[r]
//   Sum               Σ w[r]·l[r]
//   Mean              Σ w[r]·l[r] / N          (0 rows: 0)
//   SumOverAvgFactor  Σ w[r]·l[r] / (avg_factor + ε), ε = 1.1920929e-7 (float32 epsilon, as mmdetection)
// Gradients are of the reduced loss (for None: of each row's weighted loss).
enum class Reduction { None, Sum, Mean, SumOverAvgFactor };

template <class T>
struct RunOptions {
  bool gradients = true;
  Reduction reduction = Reduction::None;
  double avg_factor = 1;        // for SumOverAvgFactor; finite and >= 0
  std::span<const T> weights;   // one per row, or empty for all ones
  // Param overrides by name (e.g. {"gamma", 1.5}); params not named keep their defaults.
  std::vector<std::pair<std::string, double>> params;
};

template <class T>
struct Output {
  // None: one value per row. Sum, Mean, SumOverAvgFactor: one value.
  std::vector<T> loss;
  // One per pred input, in input order, shaped like that input (rows × width);
  // empty when gradients were not asked for.
  std::vector<std::vector<T>> gradients;
};

// A compiled loss. Obtain one from compile() or compile_file().
class LOSSFORGE_API Kernel {
 public:
  const std::string& name() const noexcept;
  const std::vector<InputInfo>& inputs() const noexcept;  // in the order run() takes them
  const std::vector<ParamInfo>& params() const noexcept;
  Backend backend() const noexcept;  // the back end actually used (never Auto)
  // The loss as canonical DSL text.
  std::string text() const;

  // Evaluates the loss (and gradients) on one batch, in float or double.
  Result<Output<float>> run(std::span<const InputView<float>> inputs, const RunOptions<float>& options = {}) const;
  Result<Output<double>> run(std::span<const InputView<double>> inputs, const RunOptions<double>& options = {}) const;
  // So that `kernel.run({{x}, {y}})` works.
  Result<Output<float>> run(std::initializer_list<InputView<float>> inputs, const RunOptions<float>& options = {}) const {
    return run(std::span<const InputView<float>>(inputs.begin(), inputs.size()), options);
  }
  Result<Output<double>> run(std::initializer_list<InputView<double>> inputs,
                             const RunOptions<double>& options = {}) const {
    return run(std::span<const InputView<double>>(inputs.begin(), inputs.size()), options);
  }

  struct Impl;  // the compiled form; opaque

 private:
  friend struct KernelAccess;
  explicit Kernel(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// ---- compiling ---------------------------------------------------------------

struct CompileOptions {
  // Which loss of the text to compile; empty: the text must define exactly one.
  std::string loss;
  // Non-empty: the text is a bare formula (infix or CSE-Autoloss prefix form,
  // e.g. "Neg(Log(Sig(X)))") over the names of this preset: "multi_cls",
  // "binary_cls" or "reg".
  std::string preset;
  Backend backend = Backend::Auto;
  // LLVM: compile in about half the time (LLVM's fast instruction selector
  // and register allocator, one vector of rows per loop iteration) for code
  // 1.3-1.7x slower on element-wise losses and up to 2x slower on row-wise
  // ones; for kernels run a few times. (Box losses always get the fast code
  // generator: it runs them as fast.)
  bool quick_compile = false;
  // Names the text in diagnostics ("my_loss.loss:3:7: error: ...").
  std::string source_name = "<text>";
};

// Compiles loss text: `loss name(...) { ... }` definitions, or a bare formula
// when options.preset is set.
LOSSFORGE_API Result<Kernel> compile(std::string_view text, const CompileOptions& options = {});
// Reads a .loss file and compiles it (source_name is the path).
LOSSFORGE_API Result<Kernel> compile_file(const std::string& path, const CompileOptions& options = {});

}  // namespace lossforge::api
