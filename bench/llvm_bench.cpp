// The LLVM ORC back end: loss + gradient throughput against the reference
// interpreter and hand-written C++ (-O3 -march=native), and compile latency
// from text to callable.
//
//   focal, CSE-Autoloss-B cls     1M elements (float32)
//   cross-entropy, CSE-Autoloss-A cls   100k rows x 81 classes
//   GIoU, CSE-Autoloss-B reg      1M box pairs
//
// Rows "llvm/1t" and "llvm/2t" run the JIT kernel on 1 and 2 threads;
// "cpp" is bench/llvm_bench_handwritten.cpp, "floor" the memory traffic
// alone. Counters are seconds per element (or per row / per pair), printed
// with SI prefixes ("1.4n" = 1.4 ns).
// Built as torch_bench (with bench/torch_bench.cpp, when LibTorch is found),
// the same binary also runs LibTorch CPU eager + autograd on the same inputs:
// rows "torch/1t" and "torch/2t", after a check against the interpreter.
// The JIT rows run the loss as every user path compiles it (eval --backend
// llvm, the embedding API, the LibTorch op: CompiledLoss::compile_cached),
// simplified; "interp" runs it as written, as `eval --backend interp` does,
// and "interp_simplified" the simplified formula, for the ratio of the
// code generator alone.
// compile/* measure text -> parse -> simplify -> differentiate -> codegen ->
// optimise -> object -> JIT link -> callable: "first" is the process's first
// compile (LLVM initialisation included), "warm" later ones (median over the
// repetitions).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "compiler/frontend.hpp"
#include "compiler/simplify.hpp"
#include "llvm_bench_handwritten.hpp"
#include "bench/bench_data.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/llvm_engine.hpp"
#include "search/generate.hpp"
#ifdef LOSSFORGE_BENCH_TORCH
#include "torch_bench.hpp"
#endif

namespace {

using namespace lossforge;
using namespace lossforge::bench;
using C = benchmark::Counter;

constexpr size_t kElements = size_t(1) << 20;  // focal, CSE-Autoloss-B cls
constexpr size_t kBoxPairs = size_t(1) << 20;  // GIoU, CSE-Autoloss-B reg
constexpr size_t kRows = 100000;               // cross-entropy, CSE-Autoloss-A cls: rows of kClasses


void set_rate(benchmark::State& state, size_t units, const char* unit, size_t per_unit = 0) {
  state.counters[std::string("sec/") + unit] = C(double(units), C::kIsIterationInvariantRate | C::kInvert);
  if (per_unit) state.counters["sec/element"] = C(double(units * per_unit), C::kIsIterationInvariantRate | C::kInvert);
}

struct Workload {
  std::string name;
  Loss loss;        // as written in examples/losses
  Loss simplified;  // what the JIT compiles
  std::vector<Array<float>> inputs;
  size_t units;
  const char* unit;
  size_t per_unit;
};

// A workload's loss and gradient buffers, allocated once: what the
// llvm_into and floor rows write.
struct Outputs {
  std::vector<float> loss;
  std::vector<std::vector<float>> grads;
  std::vector<float*> grad_rows;
  explicit Outputs(const Workload& w) : loss(w.units) {
    for (size_t index : w.loss.pred_inputs()) grads.emplace_back(w.inputs[index].data.size());
    for (std::vector<float>& g : grads) grad_rows.push_back(g.data());
  }
  Outputs(const Outputs&) = delete;  // grad_rows points into grads
};

// The kernel into buffers allocated once (CompiledLoss::evaluate_into), as the
// llvm_into and stack rows run it.
void run_into(benchmark::State& state, const Workload& w, const CompiledLoss& compiled) {
  EvalOptions eval;
  eval.gradients = true;
  const std::vector<ArrayView<float>> views = views_of(std::span<const Array<float>>(w.inputs));
  Outputs out(w);
  for (auto _ : state) {
    compiled.evaluate_into<float>(views, eval, out.loss.data(), out.grad_rows);
    benchmark::DoNotOptimize(out.loss.data());
  }
  set_rate(state, w.units, w.unit, w.per_unit);
}

// Registers the workload's rows; returns llvm_into/1t's kernel.
std::shared_ptr<CompiledLoss> register_workload(const Workload& w) {
  EvalOptions eval;
  eval.gradients = true;
  for (const auto& [prefix, loss] : {std::pair{"interp/", &w.loss}, std::pair{"interp_simplified/", &w.simplified}}) {
    benchmark::RegisterBenchmark((prefix + w.name).c_str(), [w, loss, eval](benchmark::State& state) {
      for (auto _ : state) {
        auto result = interpret<float>(*loss, std::span<const Array<float>>(w.inputs), eval);
        benchmark::DoNotOptimize(result.loss.data());
      }
      set_rate(state, w.units, w.unit, w.per_unit);
    })->Unit(benchmark::kMillisecond)->MinTime(0.5);
  }
  // llvm/1t, llvm/2t: the Full tier; llvm_quick/1t: the Quick tier's code.
  for (const auto& [prefix, threads, level] : {std::tuple{"llvm/", 1, llvm_codegen::OptLevel::Full},
                                               std::tuple{"llvm/", 2, llvm_codegen::OptLevel::Full},
                                               std::tuple{"llvm_quick/", 1, llvm_codegen::OptLevel::Quick}}) {
    LlvmOptions options;
    options.threads = threads;
    options.opt_level = level;
    auto compiled = std::make_shared<CompiledLoss>(CompiledLoss::compile(w.simplified, options));
    benchmark::RegisterBenchmark((prefix + std::to_string(threads) + "t/" + w.name).c_str(),
                                 [w, eval, compiled](benchmark::State& state) {
                                   for (auto _ : state) {
                                     auto result = compiled->evaluate<float>(w.inputs, eval);
                                     benchmark::DoNotOptimize(result.loss.data());
                                   }
                                   set_rate(state, w.units, w.unit, w.per_unit);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  // llvm_into/1t: the same kernel as llvm/1t writing into buffers allocated
  // once (CompiledLoss::evaluate_into, as the LibTorch op and the embedding
  // API call it): the kernel alone, without zero-filling fresh result arrays.
  auto compiled = std::make_shared<CompiledLoss>(CompiledLoss::compile(w.simplified));
  benchmark::RegisterBenchmark(("llvm_into/1t/" + w.name).c_str(),
                               [w, compiled](benchmark::State& state) { run_into(state, w, *compiled); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();

  // floor/1t: the memory traffic alone (bench::memory_floor): how close to
  // the machine's limit a kernel is, and a bound on any ratio to it.
  benchmark::RegisterBenchmark(("floor/1t/" + w.name).c_str(), [w](benchmark::State& state) {
    std::vector<const float*> inputs;
    std::vector<size_t> widths;
    for (const Array<float>& a : w.inputs) {
      inputs.push_back(a.data.data());
      widths.push_back(a.width);
    }
    const std::vector<size_t> pred = w.loss.pred_inputs();
    Outputs out(w);
    for (auto _ : state) {
      bench::memory_floor(inputs, widths, w.units, out.loss.data(), pred, out.grad_rows);
      benchmark::DoNotOptimize(out.loss.data());
      benchmark::DoNotOptimize(out.grad_rows.data());
    }
    set_rate(state, w.units, w.unit, w.per_unit);
  })->Unit(benchmark::kMillisecond)->UseRealTime();
  return compiled;
}

// Runs f with the stack moved down by `bytes` (a multiple of 16) more.
[[gnu::noinline]] void with_stack_offset(size_t bytes, const std::function<void()>& f) {
  volatile char* pad = static_cast<char*>(__builtin_alloca(bytes + 16));
  pad[0] = 0;
  f();
  pad[0] = 1;  // keeps the allocation live across the call
}

// stack/1t/NAME/+N: llvm_into/1t's kernel (one thread: the caller's) called
// from 4 stack offsets mod 64. Kernels that spill vector registers around
// libmvec calls ran 1.6x slower at some offsets until the kernel realigned
// its stack (llvm_codegen::build_entry; bench/README.md, session 7): the rows
// should agree.
void register_stack_offsets(const Workload& w, std::shared_ptr<CompiledLoss> compiled) {
  for (size_t offset : {0, 16, 32, 48}) {
    benchmark::RegisterBenchmark(("stack/1t/" + w.name + "/+" + std::to_string(offset)).c_str(),
                                 [w, compiled, offset](benchmark::State& state) {
                                   with_stack_offset(offset, [&] { run_into(state, w, *compiled); });
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

// The hand-written baseline of a workload (bench/llvm_bench_handwritten.cpp)
// on `rows` rows of its inputs, into preallocated outputs as a person's loop
// writes (compare llvm_into/1t; the llvm/ rows include allocating their
// result arrays).
using Handwritten = std::function<void(const std::vector<Array<float>>& in, size_t rows, float* loss, float* grad)>;

// The baselines of a workload, by row prefix: "cpp" for every workload,
// "cpp_avx2" (and two other row schedules: llvm_bench_handwritten.hpp) for
// cross-entropy where the bench has AVX2 and libmvec.
std::vector<std::pair<std::string, Handwritten>> handwritten(const std::string& workload) {
  const auto at = [](const std::vector<Array<float>>& in, size_t k) { return in[k].data.data(); };
  if (workload == "focal")
    return {{"cpp", [at](const auto& in, size_t n, float* loss, float* grad) {
               focal_loss_grad(at(in, 0), at(in, 1), loss, grad, n, 0.25f, 2.0f);
             }}};
  if (workload == "cse_autoloss_b_cls")
    return {{"cpp", [at](const auto& in, size_t n, float* loss, float* grad) {
               cse_autoloss_b_cls_loss_grad(at(in, 0), at(in, 1), at(in, 2), at(in, 3), loss, grad, n);
             }}};
  if (workload == "ce_c81") {
    std::vector<std::pair<std::string, Handwritten>> out{
        {"cpp", [at](const auto& in, size_t rows, float* loss, float* grad) {
           cross_entropy_loss_grad(at(in, 0), at(in, 1), loss, grad, rows, in[0].width);
         }}};
    using Avx2 = bool (*)(const float*, const float*, float*, float*, size_t, size_t);
    const std::pair<const char*, Avx2> schedules[] = {
        {"cpp_avx2", cross_entropy_loss_grad_avx2},
        {"cpp_avx2_deferred_log", cross_entropy_loss_grad_avx2_deferred_log},
        {"cpp_avx2_row_blocks", cross_entropy_loss_grad_avx2_row_blocks}};
    for (const auto& [prefix, kernel] : schedules)
      if (kernel(nullptr, nullptr, nullptr, nullptr, 0, kClasses))
        out.push_back({prefix, [at, kernel](const auto& in, size_t rows, float* loss, float* grad) {
                         kernel(at(in, 0), at(in, 1), loss, grad, rows, in[0].width);
                       }});
    return out;
  }
  if (workload == "cse_autoloss_a_cls_c81")
    return {{"cpp", [at](const auto& in, size_t rows, float* loss, float* grad) {
               cse_autoloss_a_cls_loss_grad(at(in, 0), at(in, 1), at(in, 2), loss, grad, rows, in[0].width);
             }}};
  if (workload == "giou")
    return {{"cpp", [at](const auto& in, size_t n, float* loss, float* grad) {
               giou_loss_grad(at(in, 0), at(in, 1), loss, grad, n);
             }}};
  if (workload == "cse_autoloss_b_reg")
    return {{"cpp", [at](const auto& in, size_t n, float* loss, float* grad) {
               cse_autoloss_b_reg_loss_grad(at(in, 0), at(in, 1), loss, grad, n);
             }}};
  throw std::logic_error("llvm_bench: no hand-written baseline for " + workload);
}

// cpp/NAME (and cpp_avx2*/NAME), each after checking the baseline against the
// interpreter on the first rows (a wrong baseline would make every ratio to
// it meaningless).
void register_handwritten(const Workload& w) {
  const size_t rows = std::min(kCheckRows, w.units);
  std::vector<Array<float>> small;
  for (const Array<float>& a : w.inputs) small.push_back(head(a, rows));
  EvalOptions eval;
  eval.gradients = true;
  const Evaluation<float> ref = interpret<float>(w.loss, std::span<const Array<float>>(small), eval);
  for (const auto& [prefix, run] : handwritten(w.name)) {
    const std::string name = prefix + "/" + w.name;
    std::vector<float> loss(rows), grad(ref.grads.front().data.size());
    run(small, rows, loss.data(), grad.data());
    const double dv = deviation(loss, ref.loss), dg = deviation(grad, ref.grads.front().data);
    std::fprintf(stderr, "llvm_bench: %-31s %zu rows, deviation from the interpreter: loss %.2e, grad %.2e\n",
                 name.c_str(), rows, dv, dg);
    if (!(dv <= kAgreement && dg <= kAgreement))
      throw std::runtime_error("llvm_bench: the hand-written " + name + " and the interpreter disagree");
    benchmark::RegisterBenchmark(name.c_str(), [&w, run = run](benchmark::State& state) {
      Outputs out(w);
      for (auto _ : state) {
        run(w.inputs, w.units, out.loss.data(), out.grad_rows.front());
        benchmark::DoNotOptimize(out.loss.data());
      }
      set_rate(state, w.units, w.unit, w.per_unit);
    })->Unit(benchmark::kMillisecond);
  }
}

// compile/warm/* and compile/warm_quick/*: the two tiers of llvm_codegen::OptLevel.
constexpr std::pair<const char*, llvm_codegen::OptLevel> kCompileTiers[] = {{"warm", llvm_codegen::OptLevel::Full},
                                                                             {"warm_quick", llvm_codegen::OptLevel::Quick}};

LlvmOptions at_level(llvm_codegen::OptLevel level) {
  LlvmOptions options;
  options.opt_level = level;
  return options;
}

// Text -> callable, loss + gradient, float32, simplified as compile_cached does.
CompiledLoss compile_text(const std::string& text, llvm_codegen::OptLevel level = llvm_codegen::OptLevel::Full) {
  Module module = load_module(SourceFile::from_text("<bench>", text));
  return CompiledLoss::compile(simplify(module.losses.front()), at_level(level));
}

std::string file_text(const std::string& path) {
  SourcePtr source = SourceFile::read(path);
  return std::string(source->text());
}

void register_compile_latency(double first_ms) {
  benchmark::RegisterBenchmark("compile/first/focal", [first_ms](benchmark::State& state) {
    for (auto _ : state) state.SetIterationTime(first_ms / 1e3);
  })->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
  for (const auto& [tier, level] : kCompileTiers)
    for (const auto& [name, file] : std::vector<std::pair<std::string, std::string>>{
             {"focal", "focal.loss"}, {"giou", "giou.loss"}, {"cse_autoloss_a", "cse_autoloss_a.loss"}}) {
      const std::string text = file_text(example_path(file));
      benchmark::RegisterBenchmark(("compile/" + std::string(tier) + "/" + name).c_str(),
                                   [text, level](benchmark::State& state) {
                                     for (auto _ : state) {
                                       CompiledLoss compiled = compile_text(text, level);
                                       benchmark::DoNotOptimize(compiled.object_code().data());
                                     }
                                   })
          ->Unit(benchmark::kMillisecond)
          ->Repetitions(5)
          ->ReportAggregatesOnly(true);
    }
  // Loading object code that was compiled before (what a kernel cache hit
  // costs besides reading the bytes): a fresh LLJIT linking the object.
  benchmark::RegisterBenchmark("compile/load_object/giou", [](benchmark::State& state) {
    const Loss loss = example("giou.loss", "giou");
    const CompiledLoss compiled = CompiledLoss::compile(loss);
    const std::string object(compiled.object_code());
    for (auto _ : state) {
      CompiledLoss loaded = CompiledLoss::load(loss, LlvmOptions{}, object);
      benchmark::DoNotOptimize(loaded.object_code().data());
    }
  })->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
  // Random candidates (depth <= 5), formulas as the search makes them: each
  // of 100 per preset compiled once and timed alone, reported as the median
  // per candidate (the time column) and the 90th percentile.
  for (const auto& [tier, level] : kCompileTiers)
    for (const char* preset_name : {"binary_cls", "multi_cls", "reg"}) {
      auto compile_random = [level, preset_name](benchmark::State& state) {
        Rng rng(1);
        GenerateOptions generate;
        const Preset& preset = *find_preset(preset_name);
        std::vector<double> ms;
        for (int c = 0; c < 100; ++c) {
          Loss loss;
          loss.name = "candidate";
          loss.inputs = preset.inputs;
          loss.body = random_expr(preset, rng, generate, GrowMethod::Grow);
          const auto start = std::chrono::steady_clock::now();
          CompiledLoss compiled = CompiledLoss::compile(simplify(loss), at_level(level));
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
          benchmark::DoNotOptimize(compiled.object_code().data());
        }
        std::sort(ms.begin(), ms.end());
        for (auto _ : state) state.SetIterationTime(ms[ms.size() / 2] / 1e3);
        state.counters["p90_ms"] = ms[ms.size() * 9 / 10];
      };
      benchmark::RegisterBenchmark(("compile/" + std::string(tier) + "/random_" + preset_name + "/median").c_str(),
                                   compile_random)
          ->UseManualTime()
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
    }
}

int run(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const auto start = std::chrono::steady_clock::now();
  CompiledLoss first = compile_text(file_text(example_path("focal.loss")));
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  benchmark::DoNotOptimize(first.object_code().data());

  Rng rng(7);
  const auto focal = focal_inputs<float>(rng, kElements);
  const auto boxes = box_inputs<float>(rng, kBoxPairs);
  const auto workload = [](std::string name, Loss loss, std::vector<Array<float>> inputs, size_t units,
                           const char* unit, size_t per_unit) {
    Loss simplified = simplify(loss);
    return Workload{std::move(name), std::move(loss), std::move(simplified), std::move(inputs), units, unit, per_unit};
  };
  const std::vector<Workload> workloads{
      workload("focal", example("focal.loss", "sigmoid_focal"), focal, kElements, "element", 0),
      workload("cse_autoloss_b_cls", example("cse_autoloss_b.loss", "cse_autoloss_b_cls"),
               binary_cls_inputs<float>(rng, kElements), kElements, "element", 0),
      workload("ce_c81", example("cross_entropy.loss", "cross_entropy"), multi_cls_inputs<float>(rng, kRows), kRows,
               "row", kClasses),
      workload("cse_autoloss_a_cls_c81", example("cse_autoloss_a.loss", "cse_autoloss_a_cls"),
               multi_cls_inputs<float>(rng, kRows, true), kRows, "row", kClasses),
      workload("giou", example("giou.loss", "giou"), boxes, kBoxPairs, "pair", 0),
      workload("cse_autoloss_b_reg", example("cse_autoloss_b.loss", "cse_autoloss_b_reg"), boxes, kBoxPairs, "pair", 0),
  };
  std::vector<std::shared_ptr<CompiledLoss>> into_kernels;
  for (const Workload& w : workloads) into_kernels.push_back(register_workload(w));
  for (size_t w : {0, 1}) register_stack_offsets(workloads[w], into_kernels[w]);  // focal, CSE-Autoloss-B cls
  for (const Workload& w : workloads) register_handwritten(w);
#ifdef LOSSFORGE_BENCH_TORCH
  std::vector<bench::TorchWorkload> torch_workloads;
  for (const Workload& w : workloads)
    torch_workloads.push_back({w.name, w.loss, w.inputs, w.units, w.unit, w.per_unit});
  bench::register_torch(torch_workloads);
#endif
  register_compile_latency(first_ms);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

// A baseline that disagrees with the interpreter (or any other failure before
// the runs) ends the process with one line and status 1.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
