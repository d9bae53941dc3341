// The LLVM back end's vectorised math against the standard library in the
// same precision, the routines the interpreter calls: libmvec's exp and log
// (as the DSL's exp and log call them, with their guards), and the back end's
// own routines (compiler/codegen_llvm.cpp: tanh, erf, erfc, atan inside sgdf,
// hypot(1, u) inside salf).
//
// Each routine is compiled as a one-operator loss and run over a dense grid
// plus log-spaced tails, ±0, ±inf, NaN, subnormals and the largest finite
// value; the loop that evaluates it is vectorised (checked below), so this
// measures the vector code. Special values must match exactly (NaN for NaN,
// the same infinity, the same signed zero); elsewhere the error is measured in
// ulps of the libm result, and for the S-curves (values in [0, 1], computed
// as (f + 1) / 2, where the cancellation for very negative inputs turns a tiny
// absolute error into many ulps of a tiny result) in units of the machine
// epsilon absolute. codegen_llvm.cpp documents the measured maxima (exp 3,
// log 2-4, tanh 2, erf 1, erfc 5-6 ulp; the S-curves 1 eps). exp and log are
// held to glibc's documented 4 ulp (float log reaches it); the others to
// looser bounds than measured (4, 4, 8 ulp; 2 eps), for hosts without FMA.
// atan has no DSL operator: it is measured inside sgdf, on [-1, 1].
#include <gtest/gtest.h>

#if LOSSFORGE_HAVE_LLVM

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "compiler/autodiff.hpp"
#include "compiler/codegen_llvm.hpp"
#include "compiler/frontend.hpp"
#include "compiler/ops.hpp"
#include "compiler/semantics.hpp"
#include "interpreter_support.hpp"
#include "llvm_ir_support.hpp"
#include "runtime/llvm_engine.hpp"

namespace lossforge::testing {
namespace {

// Distance in representable values between a and b (same sign of zero apart).
template <class T>
double ulp_distance(T a, T b) {
  using I = std::conditional_t<std::is_same_v<T, float>, int32_t, int64_t>;
  auto ordered = [](T v) {
    I i;
    std::memcpy(&i, &v, sizeof i);
    return i < 0 ? std::numeric_limits<I>::min() - i : i;
  };
  // long double holds every 64-bit pattern exactly (a double would round them to 512s).
  return double(std::fabs((long double)ordered(a) - (long double)ordered(b)));
}

template <class T>
std::vector<T> grid() {
  std::vector<T> xs;
  // Dense: the interval boundaries of every routine lie in [-30, 30].
  const int n = 600000;
  for (int i = 0; i <= n; ++i) xs.push_back(T(-30.0 + 60.0 * i / n));
  // Finer near 0 and the erf interval ends.
  for (int i = -20000; i <= 20000; ++i) xs.push_back(T(i * 1e-4));
  // Log-spaced tails, both signs.
  const double lo = std::is_same_v<T, float> ? -44 : -320, hi = std::is_same_v<T, float> ? 38 : 308;
  for (double e = lo; e <= hi; e += 0.01) {
    const T v = T(std::pow(10.0, e));
    if (std::isfinite(v)) {
      xs.push_back(v);
      xs.push_back(-v);
    }
  }
  using L = std::numeric_limits<T>;
  for (T v : {T(0), -T(0), L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(), -L::denorm_min(),
              L::min(), -L::min(), L::max(), -L::max(), T(0.625), T(0.66), T(0.84375), T(1.25), T(1 / 0.35), T(6),
              T(28), T(-6), T(-28), T(2.41421356237309504880), T(4096), T(134217728)})
    xs.push_back(v);
  return xs;
}

struct Routine {
  std::string name;  // the DSL operator
  std::function<double(double)> ref_d;
  std::function<float(float)> ref_f;
  bool curve;  // an S-curve: error in eps absolute, not ulps
  double bound_f, bound_d;
  const char* inner = nullptr;  // the routine of inner(x) (serf of a sigmoid takes erf's small-|x| path alone)
};

std::vector<Routine> routines() {
  return {
      {"exp", [](double x) { return sem::exp(x); }, [](float x) { return sem::exp(x); }, false, 4, 4},
      {"log", [](double x) { return sem::log(x); }, [](float x) { return sem::log(x); }, false, 4, 4},
      {"tanh", [](double x) { return std::tanh(x); }, [](float x) { return std::tanh(x); }, false, 4, 4},
      {"erf", [](double x) { return std::erf(x); }, [](float x) { return std::erf(x); }, false, 4, 4},
      {"erfc", [](double x) { return std::erfc(x); }, [](float x) { return std::erfc(x); }, false, 8, 8},
      {"serf", [](double x) { return sem::serf(x); }, [](float x) { return sem::serf(x); }, true, 2, 2},
      {"salf", [](double x) { return sem::salf(x); }, [](float x) { return sem::salf(x); }, true, 2, 2},
      {"sgdf", [](double x) { return sem::sgdf(x); }, [](float x) { return sem::sgdf(x); }, true, 2, 2},
      {"serf", [](double x) { return sem::serf(sem::sigmoid(x)); }, [](float x) { return sem::serf(sem::sigmoid(x)); },
       true, 2, 2, "sigmoid"},
  };
}

template <class T>
void check_routine(const Routine& r) {
  const std::string name = r.inner ? r.name + "(" + r.inner + ")" : r.name;
  SCOPED_TRACE(name);
  LossBuilder b(r.name);
  Expr x = b.pred("x", real_type());
  if (r.inner) x = make(find_function(r.inner).value(), {x});
  const Loss loss = b.build(make(find_function(r.name).value(), {x}));
  LlvmOptions options;
  options.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  options.gradients = false;
  CompiledLoss compiled = CompiledLoss::compile(forward_kernel(loss), options);

  const std::vector<T> xs = grid<T>();
  Array<T> in(xs.size(), 1);
  std::copy(xs.begin(), xs.end(), in.data.begin());
  std::vector<Array<T>> batch;
  batch.push_back(std::move(in));
  EvalOptions eval;
  const std::vector<T> got = compiled.evaluate<T>(std::span<const Array<T>>(batch), eval).loss;
  ASSERT_EQ(got.size(), xs.size());

  double worst = 0, worst_relative = 0;
  T worst_x = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const T want = std::is_same_v<T, float> ? T(r.ref_f(float(xs[i]))) : T(r.ref_d(double(xs[i])));
    const T have = got[i];
    if (std::isnan(want) || std::isinf(want) || want == 0) {
      // Special results exactly, zero with its sign.
      // (A libm 0 that is an underflow may be a subnormal here: below min().)
      const bool same = (std::isnan(want) && std::isnan(have)) ||
                        (want == have && std::signbit(want) == std::signbit(have)) ||
                        (want == 0 && have != 0 && std::fabs(have) < std::numeric_limits<T>::min());
      EXPECT_TRUE(same) << name << " at x = " << xs[i] << ": " << have << ", libm " << want;
      continue;
    }
    double err = r.curve ? std::fabs(double(have) - double(want)) / std::numeric_limits<T>::epsilon()
                         : ulp_distance(have, want);
    if (!r.curve && std::fabs(want) < std::numeric_limits<T>::min())  // subnormal results: absolute, in min()·eps
      err = std::fabs(double(have) - double(want)) /
            (std::numeric_limits<T>::min() * std::numeric_limits<T>::epsilon());
    if (err > worst) worst = err, worst_x = xs[i];
    if (std::fabs(want) >= std::numeric_limits<T>::min())
      worst_relative = std::max(worst_relative, std::fabs((double(have) - double(want)) / double(want)));
  }
  const double bound = std::is_same_v<T, float> ? r.bound_f : r.bound_d;
  std::printf("%-5s %s: max error %.3g %s at x = %.9g, max relative %.3g (%zu points)\n", name.c_str(),
              std::is_same_v<T, float> ? "f32" : "f64", worst, r.curve ? "eps (absolute)" : "ulp", double(worst_x),
              worst_relative, xs.size());
  EXPECT_LE(worst, bound) << name << " at x = " << worst_x;
}

TEST(LlvmMath, RoutinesFloat) {
  for (const Routine& r : routines()) check_routine<float>(r);
}
TEST(LlvmMath, RoutinesDouble) {
  for (const Routine& r : routines()) check_routine<double>(r);
}

// CSE-Autoloss-B cls (serf, sgdf, sigmoid, log) is vectorised now: its row
// loop has 8- or 16-wide float vectors and calls no scalar tanh/erf/atan.
TEST(LlvmMath, CseAutolossBClsVectorises) {
  Module module =
      load_module(SourceFile::read(std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/cse_autoloss_b.loss"));
  const Loss* loss = module.find("cse_autoloss_b_cls");
  ASSERT_NE(loss, nullptr);
  for (bool gradients : {false, true}) {
    const Kernel kernel = gradients ? gradient_kernel(*loss, differentiate(*loss)) : forward_kernel(*loss);
    const std::string ir = llvm_codegen::emit_ir(kernel, DType::F32, true);
    EXPECT_TRUE(ir.find("<8 x float>") != std::string::npos || ir.find("<16 x float>") != std::string::npos) << ir;
    for (const char* scalar : {"@tanhf(", "@erff(", "@erfcf(", "@atanf(", "@hypotf(", "@coshf("})
      EXPECT_EQ(ir.find(scalar), std::string::npos) << "scalar call " << scalar;
    const std::string ir64 = llvm_codegen::emit_ir(kernel, DType::F64, true);
    EXPECT_NE(ir64.find("x double>"), std::string::npos);
    for (const char* scalar : {"@tanh(", "@erf(", "@erfc(", "@atan(", "@hypot(", "@cosh("})
      EXPECT_EQ(ir64.find(scalar), std::string::npos) << "scalar call " << scalar;
  }
}

// sgdf's tanh(πa/8) takes its exponential as sgdf's derivative writes it,
// e^(-|πa/4|): with the gradient the kernel calls exp once per element, not
// twice (CSE-Autoloss-B cls: 3 exps, not 4), and still agrees with the
// interpreter (the S-curve bounds above measure the forward routine).
// Calls of exp (libmvec's _ZGV?N?v_exp(f), llvm.exp) in optimised IR, counted
// in units of exp(x)'s kernel, one exp per element: however many vectors an
// iteration runs and whatever the tail loop is, a kernel with k exps per
// element has k times its calls.
double exps_per_element(const Loss& loss, DType dtype) {
  static const Module one_exp = load_module(SourceFile::from_text("<test>", "loss e(pred x: real) = exp(x)\n"));
  const auto calls = [dtype](const Loss& l) {
    return calls_in_ir(llvm_codegen::emit_ir(gradient_kernel(l, differentiate(l)), dtype, true), {"v_exp", "@llvm.exp."});
  };
  return double(calls(loss)) / double(calls(one_exp.losses.at(0)));
}
template <class T>
void check_sgdf_gradient(const Loss& loss, double tolerance) {
  std::vector<T> xs;
  for (int i = -400; i <= 400; ++i) xs.push_back(T(i * 0.137));
  using L = std::numeric_limits<T>;
  for (T v : {T(0), -T(0), T(1e-30), T(-1e-30), T(400), T(-400), L::infinity(), -L::infinity(), L::quiet_NaN()})
    xs.push_back(v);
  std::vector<Array<T>> batch{Array<T>(xs.size(), 1, xs)};
  LlvmOptions options;
  options.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  const CompiledLoss compiled = CompiledLoss::compile(loss, options);
  EvalOptions eval;
  eval.gradients = true;
  const Evaluation<T> want = interpret<T>(loss, std::span<const Array<T>>(batch), eval);
  const Evaluation<T> have = compiled.evaluate<T>(std::span<const Array<T>>(batch), eval);
  for (size_t i = 0; i < xs.size(); ++i)
    for (auto [w, h] : {std::pair{double(want.loss[i]), double(have.loss[i])},
                        std::pair{double(want.grads[0].data[i]), double(have.grads[0].data[i])}})
      EXPECT_TRUE((std::isnan(w) && std::isnan(h)) || std::fabs(w - h) <= tolerance)
          << "x = " << xs[i] << ": llvm " << h << ", interpreter " << w;
}
TEST(LlvmMath, SgdfAndItsDerivativeShareOneExp) {
  const Module module = load_module(SourceFile::from_text("<test>", "loss s(pred x: real) = sgdf(x)\n"));
  const Loss& loss = module.losses.at(0);
  for (DType dtype : {DType::F32, DType::F64}) EXPECT_EQ(exps_per_element(loss, dtype), 1.0);
  const Loss cse_b = *load_module(SourceFile::read(std::string(LOSSFORGE_SOURCE_DIR) +
                                                   "/examples/losses/cse_autoloss_b.loss"))
                          .find("cse_autoloss_b_cls");
  EXPECT_EQ(exps_per_element(cse_b, DType::F32), 3.0);

  check_sgdf_gradient<float>(loss, 2e-6);  // values at most 1, slopes at most 1/4
  check_sgdf_gradient<double>(loss, 1e-14);
}

}  // namespace
}  // namespace lossforge::testing

#else
TEST(LlvmMath, Skipped) { GTEST_SKIP() << "lossforge was built without LLVM 16 (LOSSFORGE_HAVE_LLVM is off)"; }
#endif
