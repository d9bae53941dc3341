// The CUDA back end on a GPU: NVRTC kernels through the dlopen-ed driver
// against the reference interpreter (every example and random candidates, float
// and double), the weighted reductions, both row layouts, large batches, the
// kernel cache. Without a device each of these skips with the reason; the
// "no CUDA device" condition itself is tested everywhere.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "../aot/generated_support.hpp"
#include "compiler/error.hpp"
#include "runtime/cuda/cuda_engine.hpp"
#include "runtime/cuda/driver.hpp"

namespace lossforge::generated_testing {
namespace {

using cuda::CudaLoss;
using cuda::CudaOptions;

#define REQUIRE_DEVICE() \
  if (!cuda::cuda_device_available()) GTEST_SKIP() << "no CUDA device"

// CUDA's math library is within a few ulp of glibc's (the interpreter's).
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 5e-4 : 1e-9;
}

template <class T>
CudaOptions options_for(bool gradients = true) {
  CudaOptions options;
  options.dtype = std::is_same_v<T, float> ? CudaDType::F32 : CudaDType::F64;
  options.gradients = gradients;
  return options;
}

Loss example(const std::string& name) {
  for (const Loss& loss : example_losses())
    if (loss.name == name) return loss;
  throw std::runtime_error("no example " + name);
}

template <class T>
void check_examples(bool gradients) {
  std::mt19937_64 rng(3);
  for (const Loss& loss : example_losses()) {
    SCOPED_TRACE(loss.name);
    const CudaLoss compiled = CudaLoss::compile(loss, options_for<T>(gradients));
    for (size_t rows : {size_t(0), size_t(1), size_t(3), size_t(7), size_t(33), size_t(1003), size_t(100003)}) {
      const Batch<T> batch = as<T>(random_batch(loss, rows, rng, rows % 2 ? 81 : 5));
      EvalOptions options;
      options.gradients = gradients;
      const Evaluation<T> expected = interpret<T>(loss, std::span<const Array<T>>(batch), options);
      EXPECT_TRUE(same_evaluation(compiled.evaluate<T>(std::span<const Array<T>>(batch), options), expected,
                                  loss.name + " N=" + std::to_string(rows), tolerance<T>()));
    }
  }
}

TEST(CudaExamples, LossAndGradientFloat) { REQUIRE_DEVICE(); check_examples<float>(true); }
TEST(CudaExamples, LossAndGradientDouble) { REQUIRE_DEVICE(); check_examples<double>(true); }
TEST(CudaExamples, ForwardFloat) { REQUIRE_DEVICE(); check_examples<float>(false); }

template <class T>
void check_candidates() {
  for (const Preset& preset : all_presets()) {
    SCOPED_TRACE(preset.name);
    std::mt19937_64 rng(std::hash<std::string>{}(preset.name));
    for (const Loss& loss : random_candidates(preset, 40, 77 + preset.name.size())) {
      const Kernel kernel = kernel_of(loss);
      const CudaLoss compiled = CudaLoss::compile(kernel, options_for<T>());
      const Batch<T> batch = as<T>(random_batch(loss, 37, rng));
      EvalOptions options;
      options.gradients = true;
      EXPECT_TRUE(same_evaluation(compiled.evaluate<T>(std::span<const Array<T>>(batch), options),
                                  interpret_roots<T>(kernel, batch), loss.name, tolerance<T>()));
    }
  }
}

TEST(CudaCandidates, LossAndGradientFloat) { REQUIRE_DEVICE(); check_candidates<float>(); }
TEST(CudaCandidates, LossAndGradientDouble) { REQUIRE_DEVICE(); check_candidates<double>(); }

// f16 and bf16 kernels: the interpreter in float on the inputs rounded to the
// dtype, its gradients rounded to it (a float result a few ulp away may round
// to the neighbouring 16-bit value, hence the tolerance of one 16-bit ulp).
void check_sixteen_bit(CudaDType dtype) {
  auto round = [dtype](std::vector<float>& values) {
    for (float& v : values) v = round_to_storage(dtype, v);
  };
  std::mt19937_64 rng(5);
  CudaOptions options;
  options.dtype = dtype;
  for (const Loss& loss : example_losses()) {
    SCOPED_TRACE(loss.name);
    const CudaLoss compiled = CudaLoss::compile(loss, options);
    for (size_t rows : {size_t(1), size_t(7), size_t(1003)}) {
      Batch<float> batch = as<float>(random_batch(loss, rows, rng, rows % 2 ? 81 : 5));
      for (Array<float>& input : batch) round(input.data);
      EvalOptions eval;
      eval.gradients = true;
      Evaluation<float> expected = interpret<float>(loss, std::span<const Array<float>>(batch), eval);
      for (Array<float>& grad : expected.grads) round(grad.data);
      EXPECT_TRUE(same_evaluation(compiled.evaluate<float>(std::span<const Array<float>>(batch), eval), expected,
                                  loss.name + " N=" + std::to_string(rows),
                                  dtype == CudaDType::F16 ? 2e-3 : 1.6e-2));
    }
  }
}

TEST(CudaSixteenBit, HalfMatchesTheInterpreterOnRoundedInputs) { REQUIRE_DEVICE(); check_sixteen_bit(CudaDType::F16); }
TEST(CudaSixteenBit, BFloat16MatchesTheInterpreterOnRoundedInputs) {
  REQUIRE_DEVICE();
  check_sixteen_bit(CudaDType::BF16);
}

// Wide rows take the block-per-row kernel; its reductions must agree too.
TEST(CudaLayouts, WideRowsUseABlockPerRow) {
  REQUIRE_DEVICE();
  const Loss loss = example("cross_entropy");
  EXPECT_EQ(cuda_layout(loss, 81), CudaLayout::Warp);
  EXPECT_EQ(cuda_layout(loss, 5000), CudaLayout::Block);
  std::mt19937_64 rng(9);
  const CudaLoss compiled = CudaLoss::compile(loss, options_for<double>());
  for (size_t width : {size_t(1), size_t(31), size_t(1025), size_t(5000)}) {
    const Batch<double> batch = random_batch(loss, 67, rng, width);
    EvalOptions options;
    options.gradients = true;
    EXPECT_TRUE(same_evaluation(compiled.evaluate<double>(std::span<const Array<double>>(batch), options),
                                interpret<double>(loss, std::span<const Array<double>>(batch), options),
                                "C=" + std::to_string(width), 1e-9));
  }
}

template <class T>
void check_reductions(const std::string& name) {
  const Loss loss = example(name);
  std::mt19937_64 rng(11);
  const CudaLoss compiled = CudaLoss::compile(loss, options_for<T>());
  const size_t rows = 100001;
  const Batch<T> batch = as<T>(random_batch(loss, rows, rng, 81));
  EvalOptions options;
  options.gradients = true;
  const Evaluation<T> plain = interpret<T>(loss, std::span<const Array<T>>(batch), options);
  std::vector<double> weights(rows);
  for (double& w : weights) w = T(uniform(rng, 0, 2));  // representable in T
  for (cuda::Reduction reduction : {cuda::Reduction::Sum, cuda::Reduction::Mean}) {
    for (double avg_factor : {0.0, 1234.5}) {
      cuda::ReduceOptions reduce;
      reduce.reduction = reduction;
      reduce.weights = weights;
      reduce.avg_factor = avg_factor;
      const cuda::Reduced<T> out = compiled.reduce<T>(std::span<const Array<T>>(batch), reduce, options);
      const double scale = avg_factor > 0 ? 1 / avg_factor : reduction == cuda::Reduction::Mean ? 1.0 / rows : 1.0;
      double total = 0, magnitude = 0;
      for (size_t r = 0; r < rows; ++r) {
        total += double(plain.loss[r]) * weights[r];
        magnitude += std::fabs(double(plain.loss[r]) * weights[r]);
      }
      EXPECT_NEAR(out.total, total * scale, tolerance<T>() * magnitude * scale + 1e-12) << name;
      for (size_t g = 0; g < plain.grads.size(); ++g)
        for (size_t r = 0; r < rows; r += 97)
          for (size_t k = 0; k < plain.grads[g].width; ++k) {
            const double want = double(plain.grads[g].row(r)[k]) * weights[r] * scale;
            ASSERT_NEAR(out.rows.grads[g].row(r)[k], want, tolerance<T>() * std::max(scale, std::fabs(want))) << name;
          }
    }
  }
}

TEST(CudaReductions, WeightedSumMeanAndAvgFactorFloat) {
  REQUIRE_DEVICE();
  for (const char* name : {"sigmoid_focal", "giou", "cross_entropy"}) check_reductions<float>(name);
}
TEST(CudaReductions, WeightedSumMeanAndAvgFactorDouble) {
  REQUIRE_DEVICE();
  for (const char* name : {"sigmoid_focal", "giou", "cross_entropy"}) check_reductions<double>(name);
}

TEST(CudaCache, ASecondCompileLoadsTheCachedImage) {
  REQUIRE_DEVICE();
  const std::string dir = ::testing::TempDir() + "/lossforge_cuda_cache_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  KernelCacheOptions cache_options;
  cache_options.directory = dir;
  const Loss loss = example("sigmoid_focal");
  {
    KernelCache cache(cache_options);
    const CudaLoss first = CudaLoss::compile_cached(loss, options_for<float>(), cache);
    EXPECT_FALSE(first.loaded_from_cache());
  }
  KernelCache cache(cache_options);  // a new process, as far as memory goes
  const auto start = std::chrono::steady_clock::now();
  const CudaLoss second = CudaLoss::compile_cached(loss, options_for<float>(), cache);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(second.loaded_from_cache());
  EXPECT_EQ(cache.stats().disk_hits, 1u);
  std::cout << "[ cuda ] cached load (disk, incl. simplify + autodiff): " << ms << " ms\n";
  std::mt19937_64 rng(1);
  const Batch<float> batch = as<float>(random_batch(loss, 1000, rng));
  EvalOptions options;
  options.gradients = true;
  EXPECT_TRUE(same_evaluation(second.evaluate<float>(std::span<const Array<float>>(batch), options),
                              interpret<float>(loss, std::span<const Array<float>>(batch), options), "cached", 5e-4));
  std::filesystem::remove_all(dir);
}

TEST(CudaErrors, WrongDtypeAndShapesAreReported) {
  REQUIRE_DEVICE();
  const Loss loss = example("sigmoid_focal");
  const CudaLoss compiled = CudaLoss::compile(loss, options_for<float>());
  Batch<double> doubles = {Array<double>(3, 1), Array<double>(3, 1)};
  EXPECT_THROW(compiled.evaluate<double>(std::span<const Array<double>>(doubles)), std::invalid_argument);
  Batch<float> short_batch = {Array<float>(3, 1), Array<float>(2, 1)};
  EXPECT_THROW(compiled.evaluate<float>(std::span<const Array<float>>(short_batch)), InputError);
}

// Runs everywhere: without a device every entry point says so, in one line.
TEST(CudaWithoutDevice, NoDeviceIsATypedConditionAndAOneLineCliError) {
  if (cuda::cuda_device_available()) GTEST_SKIP() << "this machine has a CUDA device";
  const Loss loss = example("sigmoid_focal");
  try {
    CudaLoss::compile(loss, options_for<float>());
    FAIL() << "compiled without a device";
  } catch (const UnavailableError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("no CUDA device: ", 0), 0u) << e.what();
  }
  EXPECT_THROW(cuda::cuda_driver(), UnavailableError);
  const std::string dir = ::testing::TempDir() + "/lossforge_cuda_cli_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/in.json") << R"({"x": [0.5, -1], "y": [1, 0]})";
  const std::string command = std::string(LOSSFORGE_CLI) + " eval " + LOSSFORGE_SOURCE_DIR +
                              "/examples/losses/focal.loss --inputs " + dir + "/in.json --backend cuda > " + dir +
                              "/out.txt 2> " + dir + "/err.txt";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream err(dir + "/err.txt");
  std::string line, rest;
  std::getline(err, line);
  EXPECT_EQ(line.rfind("lossforge: no CUDA device: ", 0), 0u) << line;
  EXPECT_FALSE(std::getline(err, rest)) << "more than one line: " << rest;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lossforge::generated_testing
