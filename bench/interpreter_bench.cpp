// Throughput of the reference interpreter on the example losses, loss and
// gradient together (what a training step needs), in float32 and float64:
// focal loss and CSE-Autoloss-B cls per element, cross-entropy with C = 81 per
// row and per element, GIoU per box pair. For scale, muparser's bulk mode on
// the focal forward formula: the expression library a C++ user would pick
// today (it has no gradients, so the interpreter's forward-only focal row is
// the like-for-like comparison).
//
// Counters are seconds per unit of work, printed with SI prefixes: "41.5n" is
// 41.5 ns per element. Every benchmark runs on one core.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/frontend.hpp"
#include "bench/bench_data.hpp"
#include "runtime/interpreter.hpp"

#if LOSSFORGE_BENCH_MUPARSER
#include <muParser.h>
#endif
#if LOSSFORGE_BENCH_OPENMP
#include <omp.h>
#endif

namespace {

using namespace lossforge;
using namespace lossforge::bench;

constexpr size_t kElements = size_t(1) << 18;  // focal, CSE-Autoloss-B cls: 262144 (point, class) elements
constexpr size_t kBoxPairs = size_t(1) << 17;  // GIoU
constexpr size_t kCeRows = size_t(1) << 13;    // cross-entropy: 8192 RoIs of kClasses

// One interpreter benchmark: `units` is the work per call (elements, rows or
// box pairs) under `unit`; `elements_per_unit` adds a per-element counter.
template <class T>
void run_interpreter(benchmark::State& state, const Loss& loss, const std::vector<Array<T>>& inputs, bool gradients,
                     size_t units, const char* unit, size_t elements_per_unit = 0) {
  EvalOptions options;
  options.gradients = gradients;
  for (auto _ : state) {
    Evaluation<T> result = interpret<T>(loss, std::span<const Array<T>>(inputs), options);
    benchmark::DoNotOptimize(result.loss.data());
    benchmark::ClobberMemory();
  }
  using C = benchmark::Counter;
  state.counters[std::string("sec/") + unit] = C(double(units), C::kIsIterationInvariantRate | C::kInvert);
  if (elements_per_unit)
    state.counters["sec/element"] = C(double(units * elements_per_unit), C::kIsIterationInvariantRate | C::kInvert);
}

template <class T>
void register_interpreter(const char* dtype) {
  // Loaded once: the benchmarks measure evaluation, not the front end.
  static const Loss focal = example("focal.loss", "sigmoid_focal");
  static const Loss ce = example("cross_entropy.loss", "cross_entropy");
  static const Loss giou = example("giou.loss", "giou");
  static const Loss b_cls = example("cse_autoloss_b.loss", "cse_autoloss_b_cls");
  Rng rng(7);
  auto focal_data = focal_inputs<T>(rng, kElements);
  auto ce_data = multi_cls_inputs<T>(rng, kCeRows);
  auto box_data = box_inputs<T>(rng, kBoxPairs);
  auto b_cls_data = binary_cls_inputs<T>(rng, kElements);
  const std::string suffix = std::string("/") + dtype;

  benchmark::RegisterBenchmark(("interp/focal/loss+grad" + suffix).c_str(), [=](benchmark::State& s) {
    run_interpreter<T>(s, focal, focal_data, true, kElements, "element");
  });
  benchmark::RegisterBenchmark(("interp/focal/loss" + suffix).c_str(), [=](benchmark::State& s) {
    run_interpreter<T>(s, focal, focal_data, false, kElements, "element");
  });
  benchmark::RegisterBenchmark(("interp/ce_c81/loss+grad" + suffix).c_str(), [=](benchmark::State& s) {
    run_interpreter<T>(s, ce, ce_data, true, kCeRows, "row", kClasses);
  });
  benchmark::RegisterBenchmark(("interp/giou/loss+grad" + suffix).c_str(), [=](benchmark::State& s) {
    run_interpreter<T>(s, giou, box_data, true, kBoxPairs, "pair");
  });
  benchmark::RegisterBenchmark(("interp/cse_autoloss_b_cls/loss+grad" + suffix).c_str(), [=](benchmark::State& s) {
    run_interpreter<T>(s, b_cls, b_cls_data, true, kElements, "element");
  });
}

#if LOSSFORGE_BENCH_MUPARSER
double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }

// The focal forward formula of SPEC §2 as a muparser user writes it: one
// expression (muparser has no lets), with sigmoid defined as a C function.
constexpr const char* kFocalMuparser =
    "-(0.25*y + 0.75*(1-y)) * (1 - (sigmoid(x)*y + (1-sigmoid(x))*(1-y)))^2"
    " * ln(sigmoid(x)*y + (1-sigmoid(x))*(1-y))";

void muparser_focal(benchmark::State& state) {
  Rng rng(7);
  auto data = focal_inputs<double>(rng, kElements);
  std::vector<double> x = data[0].data, y = data[1].data, out(kElements);
  mu::Parser parser;
  parser.DefineFun("sigmoid", sigmoid);
  parser.DefineVar("x", x.data());  // bulk mode reads x[i], y[i] for result i
  parser.DefineVar("y", y.data());
  parser.SetExpr(kFocalMuparser);

  // The same numbers as the interpreter, or the comparison means nothing.
  static const Loss focal = example("focal.loss", "sigmoid_focal");
  parser.Eval(out.data(), int(kElements));
  std::vector<double> expected = interpret<double>(focal, std::span<const Array<double>>(data)).loss;
  for (size_t i = 0; i < kElements; ++i)
    if (std::fabs(out[i] - expected[i]) > 1e-9 * std::max(1.0, std::fabs(expected[i]))) {
      state.SkipWithError(("muparser and the interpreter disagree at element " + std::to_string(i)).c_str());
      return;
    }

  for (auto _ : state) {
    parser.Eval(out.data(), int(kElements));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  using C = benchmark::Counter;
  state.counters["sec/element"] = C(double(kElements), C::kIsIterationInvariantRate | C::kInvert);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#if LOSSFORGE_BENCH_OPENMP
  omp_set_num_threads(1);  // muparser's bulk mode would otherwise use every core
#endif
  register_interpreter<float>("f32");
  register_interpreter<double>("f64");
#if LOSSFORGE_BENCH_MUPARSER
  benchmark::RegisterBenchmark("muparser/focal/loss/f64", muparser_focal);
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
