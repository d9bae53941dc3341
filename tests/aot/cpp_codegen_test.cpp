// The generated host C++ (compiler/codegen_cpp.hpp) compiled by the system C++
// compiler into a shared object, loaded with dlopen and run against the
// reference interpreter: every example loss and random candidates of every
// preset, float and double, with and without gradients, plus the weighted
// reductions. The same row code is what the CUDA kernels instantiate, so
// this also checks the CUDA generator's expressions on a machine without a GPU.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "compiler/codegen_c.hpp"
#include "compiler/codegen_cpp.hpp"
#include "compiler/codegen_cuda.hpp"
#include "compiler/error.hpp"
#include "compiler/print.hpp"
#include "generated_support.hpp"
#include "shared_object.hpp"

namespace lossforge::generated_testing {
namespace {

constexpr size_t kCandidatesPerPreset = 60;

using Entry = double (*)(const Launch*, long long, long long);

template <class T>
struct Outputs {
  Evaluation<T> eval;
  double total = 0;
};

// Runs a generated entry point on host arrays the way the engines do.
template <class T>
Outputs<T> run(Entry entry, const Kernel& kernel, const Batch<T>& batch, bool gradients,
               const std::vector<T>& weights = {}, double scale = 1, size_t split = 0) {
  const Loss& loss = kernel.loss;
  const BatchShape shape = check_inputs(loss, std::span<const Array<T>>(batch));
  Outputs<T> out;
  out.eval.loss.assign(shape.rows, T(-12345));
  Launch launch;
  launch.rows = (long long)shape.rows;
  for (size_t i = 0; i < batch.size(); ++i) {
    launch.inputs[i] = batch[i].data.data();
    launch.widths[i] = (long long)batch[i].width;
  }
  for (size_t p = 0; p < loss.params.size(); ++p) launch.params[p] = loss.params[p].value;
  launch.loss = out.eval.loss.data();
  if (gradients)
    for (size_t g = 0; g < kernel.gradients.size(); ++g) {
      out.eval.grads.emplace_back(shape.rows, batch[kernel.gradients[g].input].width);
      launch.grads[g] = out.eval.grads.back().data.data();
    }
  if (!weights.empty()) launch.weight = weights.data();
  launch.loss_scale = launch.grad_scale = scale;
  // Two calls over split row ranges add up as one.
  const long long middle = split ? (long long)split : launch.rows;
  out.total = entry(&launch, 0, middle) + entry(&launch, middle, launch.rows);
  return out;
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

struct Compiled {
  std::vector<Kernel> kernels;
  std::vector<std::string> symbols;
  std::unique_ptr<SharedObject> object;
};

// One translation unit for all `losses`, both dtypes.
Compiled compile_all(const std::vector<Loss>& losses, bool gradients, const std::string& name) {
  Compiled c;
  std::string source;
  for (size_t i = 0; i < losses.size(); ++i) {
    c.kernels.push_back(kernel_of(losses[i], gradients));
    c.symbols.push_back("lf" + std::to_string(i) + "_" + c_codegen::default_symbol(losses[i].name));
    CppEmitOptions options;
    options.dtypes = {DType::F32, DType::F64};
    options.symbol = c.symbols.back();
    options.preamble = i == 0;
    source += emit_cpp(c.kernels.back(), options);
  }
  c.object = std::make_unique<SharedObject>(source, name);
  std::cout << "[ compiled ] " << losses.size() << " losses, " << source.size() / 1024 << " KiB of C++ in "
            << c.object->seconds() << " s\n";
  return c;
}

template <class T>
void check_against_interpreter(const Compiled& c, size_t rows, uint64_t seed, bool use_roots) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < c.kernels.size(); ++i) {
    const Kernel& kernel = c.kernels[i];
    const Batch<T> batch = as<T>(random_batch(kernel.loss, rows, rng));
    const DType dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
    const Entry entry = c.object->function<Entry>(cpp_function_name(c.symbols[i], dtype));
    const bool gradients = kernel.has_gradients();
    Evaluation<T> expected;
    if (use_roots) {
      expected = interpret_roots<T>(kernel, batch);
    } else {
      EvalOptions options;
      options.gradients = gradients;
      expected = interpret<T>(kernel.loss, std::span<const Array<T>>(batch), options);
    }
    const Outputs<T> actual = run<T>(entry, kernel, batch, gradients, {}, 1, rows / 3);
    EXPECT_TRUE(same_evaluation(actual.eval, expected, kernel.loss.name, tolerance<T>()));
  }
}

TEST(CppCodegen, ExamplesMatchTheInterpreter) {
  const std::vector<Loss> examples = example_losses();
  ASSERT_GE(examples.size(), 9u);
  const Compiled with = compile_all(examples, true, "examples");
  check_against_interpreter<float>(with, 1003, 1, false);
  check_against_interpreter<double>(with, 1003, 2, false);
  check_against_interpreter<double>(with, 1, 3, false);
}

TEST(CppCodegen, RandomCandidatesMatchTheInterpreter) {
  std::vector<Loss> losses;
  for (const Preset& preset : all_presets()) {
    std::vector<Loss> some = random_candidates(preset, kCandidatesPerPreset, std::hash<std::string>{}(preset.name));
    losses.insert(losses.end(), some.begin(), some.end());
  }
  const Compiled with = compile_all(losses, true, "candidates");
  check_against_interpreter<float>(with, 37, 4, true);
  check_against_interpreter<double>(with, 37, 5, true);
}

TEST(CppCodegen, ForwardOnlyKernels) {
  const Compiled without = compile_all(example_losses(), false, "forward");
  check_against_interpreter<float>(without, 101, 6, false);
}

// Weighted sum / mean / avg_factor: the total and the scaled gradients.
TEST(CppCodegen, WeightedReductions) {
  std::vector<Loss> losses;
  for (const Loss& loss : example_losses())
    if (loss.name == "sigmoid_focal" || loss.name == "cross_entropy" || loss.name == "giou") losses.push_back(loss);
  ASSERT_EQ(losses.size(), 3u);
  const Compiled c = compile_all(losses, true, "reductions");
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < c.kernels.size(); ++i) {
    const Kernel& kernel = c.kernels[i];
    const size_t rows = 257;
    const Batch<double> batch = random_batch(kernel.loss, rows, rng);
    std::vector<double> weights(rows);
    for (double& w : weights) w = uniform(rng, 0, 2);
    EvalOptions options;
    options.gradients = true;
    const Evaluation<double> plain = interpret<double>(kernel.loss, std::span<const Array<double>>(batch), options);
    const Entry entry = c.object->function<Entry>(cpp_function_name(c.symbols[i], DType::F64));
    for (double scale : {1.0, 1.0 / rows, 1.0 / 17.5}) {
      const Outputs<double> out = run<double>(entry, kernel, batch, true, weights, scale, 100);
      double total = 0;
      for (size_t r = 0; r < rows; ++r) total += plain.loss[r] * weights[r];
      EXPECT_NEAR(out.total, total * scale, 1e-9 * std::max(1.0, std::fabs(total))) << kernel.loss.name;
      for (size_t r = 0; r < rows; ++r) EXPECT_NEAR(out.eval.loss[r], plain.loss[r] * weights[r], 1e-12 + 1e-12 * std::fabs(plain.loss[r]));
      for (size_t g = 0; g < plain.grads.size(); ++g)
        for (size_t r = 0; r < rows; ++r)
          for (size_t k = 0; k < plain.grads[g].width; ++k) {
            const double want = plain.grads[g].row(r)[k] * weights[r] * scale;
            ASSERT_NEAR(out.eval.grads[g].row(r)[k], want, 1e-10 * std::max(1.0, std::fabs(want))) << kernel.loss.name;
          }
    }
  }
}

TEST(CppCodegen, EmitCommandPrintsCudaAndCpp) {
  const std::string focal = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/focal.loss";
  const std::string out = temp_dir() + "/emit.txt";
  for (const std::string target : {"cuda", "cpp"}) {
    const std::string command = std::string(LOSSFORGE_CLI) + " emit --target " + target + " " + focal + " --dtype f64 > " + out;
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("namespace lossforge::sem"), std::string::npos) << "the semantics are embedded";
    if (target == "cuda") {
      EXPECT_NE(text.find("__global__ void __launch_bounds__(256) lossforge_sigmoid_focal_f64_rows("), std::string::npos);
    } else {
      EXPECT_NE(text.find("extern \"C\" double lossforge_sigmoid_focal_f64("), std::string::npos);
      EXPECT_EQ(text.find("__global__"), std::string::npos);
    }
  }
}

// The row code with 16-bit arrays (S = half or bfloat16, T = float), as the
// CUDA f16/bf16 kernels instantiate it, here on the host: an entry point per
// loss calls the row function through the same row_call the CUDA kernels use,
// on arrays of 16-bit values. It must agree with the interpreter in float on
// the rounded inputs, its gradients rounded (to within one 16-bit ulp).
TEST(CppCodegen, SixteenBitRowCodeMatchesTheInterpreterOnRoundedInputs) {
  std::vector<Loss> losses = example_losses();
  losses.push_back(load_module(SourceFile::from_text(
      "<test>", "loss mixed(pred x: real[C], pred p: box, g: box, t: real) = sum(x) * t + iou(p, g) + p.x1")).losses.front());
  for (const Preset& preset : all_presets()) {
    std::vector<Loss> some = random_candidates(preset, 20, 31 + preset.name.size());
    losses.insert(losses.end(), some.begin(), some.end());
  }
  struct Storage {
    const char* name;
    const char* type;
    CudaDType dtype;
    double tolerance;
  };
  const Storage storages[] = {{"half", "lossforge::storage::half", CudaDType::F16, 2e-3},
                              {"bfloat16", "lossforge::storage::bfloat16", CudaDType::BF16, 1.6e-2}};
  std::vector<Kernel> kernels;
  std::string source;
  for (size_t i = 0; i < losses.size(); ++i) {
    kernels.push_back(kernel_of(losses[i], true));
    const std::string symbol = "s" + std::to_string(i);
    CppEmitOptions options;
    options.symbol = symbol;
    options.preamble = i == 0;
    source += emit_cpp(kernels.back(), options);
    if (i == 0) source += c_codegen::storage_types_text();
    for (const Storage& st : storages) {
      source += "extern \"C\" double " + symbol + "_" + st.name +
                "(const LossforgeLaunch* launch, long long begin, long long end) {\n"
                "  typedef float T;\n  typedef " + st.type + " S;\n"
                "  const LossforgeLaunch& args = *launch;\n  const T gscale = T(args.grad_scale);\n"
                "  for (long long r = begin; r < end; ++r)\n    ((T*)args.loss)[r] = " +
                c_codegen::row_call(kernels.back(), symbol, "Serial", "args", "r", "gscale", "S") + ";\n  return 0;\n}\n";
    }
  }
  const SharedObject object(source, "sixteen_bit");
  std::mt19937_64 rng(8);
  for (size_t i = 0; i < losses.size(); ++i) {
    const Kernel& kernel = kernels[i];
    const Batch<float> batch = as<float>(random_batch(kernel.loss, 37, rng, i % 2 ? 81 : 5));
    for (const Storage& st : storages) {
      SCOPED_TRACE(kernel.loss.name + " " + st.name);
      Batch<float> rounded = batch;
      std::vector<std::vector<uint16_t>> stored;
      Launch launch;
      launch.rows = 37;
      for (size_t k = 0; k < rounded.size(); ++k) {
        stored.emplace_back();
        for (float& v : rounded[k].data) {
          stored.back().push_back(to_storage_bits(st.dtype, v));
          v = from_storage_bits(st.dtype, stored.back().back());
        }
        launch.inputs[k] = stored.back().data();
        launch.widths[k] = (long long)rounded[k].width;
      }
      for (size_t p = 0; p < kernel.loss.params.size(); ++p) launch.params[p] = kernel.loss.params[p].value;
      std::vector<float> loss(37);
      launch.loss = loss.data();
      std::vector<std::vector<uint16_t>> grads;
      for (const InputGradient& g : kernel.gradients) grads.emplace_back(rounded[g.input].data.size());
      for (size_t g = 0; g < grads.size(); ++g) launch.grads[g] = grads[g].data();
      object.function<Entry>(std::string("s") + std::to_string(i) + "_" + st.name)(&launch, 0, 37);

      Evaluation<float> expected = interpret_roots<float>(kernel, rounded);
      Evaluation<float> actual;
      actual.loss = loss;
      for (size_t g = 0; g < grads.size(); ++g) {
        for (float& v : expected.grads[g].data) v = round_to_storage(st.dtype, v);
        actual.grads.emplace_back(expected.grads[g].rows, expected.grads[g].width);
        for (size_t k = 0; k < grads[g].size(); ++k) actual.grads[g].data[k] = from_storage_bits(st.dtype, grads[g][k]);
      }
      EXPECT_TRUE(same_evaluation(actual, expected, kernel.loss.name, st.tolerance));
    }
  }
}

// The row max and Σ e^(x - max) of one argument are computed once per row,
// however many softmax-family nodes use them (the loss's log_softmax, the
// gradient's softmax); each pass over the row costs a loop (and a warp
// reduction on the GPU). Other arguments get their own.
TEST(CppCodegen, SoftmaxFamilyNodesOfOneRowShareTheirReductions) {
  const auto max_loops = [](const std::string& text) {
    const Module module = load_module(SourceFile::from_text("<test>", text));
    const std::string code = emit_cpp(user_kernel(module.losses.front(), /*gradients=*/true), CppEmitOptions{});
    const std::string max_init = "= lossforge::gen::neg_inf<T>();";
    size_t count = 0;
    for (size_t at = code.find(max_init); at != std::string::npos; at = code.find(max_init, at + 1)) ++count;
    return count;
  };
  EXPECT_EQ(max_loops("loss ce(pred x: real[C], y: real[C]) = -dot(y, log_softmax(x))"), 1u);
  EXPECT_EQ(max_loops("loss a(pred x: real[C], y: real[C]) = logsumexp(x) + dot(y, softmax(x))"), 1u);
  EXPECT_EQ(max_loops("loss b(pred x: real[C], y: real[C]) = dot(softmax(x), softmax(2 * x))"), 2u);
}

// Row sums that do not read each other share one loop over the row; a sum that
// reads another waits for it.
TEST(CppCodegen, IndependentRowSumsShareALoop) {
  const auto loops = [](const std::string& text, bool gradients) {
    const Module module = load_module(SourceFile::from_text("<test>", text));
    const Loss& loss = module.losses.front();
    const std::string code = emit_cpp(gradients ? user_kernel(loss, true) : forward_kernel(loss), CppEmitOptions{});
    const std::string loop = "for (long long c = L::first();";
    size_t count = 0;
    for (size_t at = code.find(loop); at != std::string::npos; at = code.find(loop, at + 1)) ++count;
    return count;
  };
  EXPECT_EQ(loops("loss a(pred x: real[C], y: real[C]) = sum(x) * dot(x, y) + mean(y)", false), 1u);
  EXPECT_EQ(loops("loss b(pred x: real[C], y: real[C]) = sum(x * sum(y))", false), 2u);
  // Cross-entropy with its gradient: max, Σ exp, the loss's dot and the gradient's Σ y together, the gradient.
  EXPECT_EQ(loops("loss ce(pred x: real[C], y: real[C]) = -dot(y, log_softmax(x))", true), 4u);
}

TEST(CppCodegen, LimitsAreInputErrors) {
  Loss loss;
  loss.name = "wide";
  for (int i = 0; i < 17; ++i) loss.inputs.push_back({"x" + std::to_string(i), Type::real(), i == 0});
  loss.body = lossforge::input(0, "x0", Type::real());
  EXPECT_THROW(emit_cpp(loss), InputError);
  EXPECT_THROW(emit_cuda(loss), InputError);
}

}  // namespace
}  // namespace lossforge::generated_testing
