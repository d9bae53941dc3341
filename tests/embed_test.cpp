// The embedding API, used as a program using lossforge would: through
// <lossforge/lossforge.hpp> only, linked against liblossforge.so.
#include <lossforge/lossforge.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace lf = lossforge::api;

const std::string kExamples = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/";

// Compiled kernels go to a kernel cache of this test's own, not the user's.
const std::string kCacheDir = [] {
  std::string dir = (std::filesystem::temp_directory_path() / "lossforge-embed-test-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) std::abort();
  ::setenv("LOSSFORGE_CACHE_DIR", dir.c_str(), 1);
  return dir;
}();
struct RemoveCacheDir {
  ~RemoveCacheDir() {
    std::error_code ignored;
    std::filesystem::remove_all(kCacheDir, ignored);
  }
} remove_cache_dir;

lf::Kernel compile_example(const std::string& file, const std::string& loss = "") {
  lf::CompileOptions options;
  options.loss = loss;
  lf::Result<lf::Kernel> kernel = lf::compile_file(kExamples + file, options);
  if (!kernel) ADD_FAILURE() << kernel.error().message;
  return std::move(kernel).value();
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// The focal loss of examples/losses/focal.loss, written out by hand.
double focal(double x, double y, double alpha = 0.25, double gamma = 2) {
  const double p = sigmoid(x);
  const double pt = p * y + (1 - p) * (1 - y);
  const double at = alpha * y + (1 - alpha) * (1 - y);
  return at * std::pow(1 - pt, gamma) * (softplus(x) - x * y);
}

const std::vector<double> kLogits = {-3.0, -0.5, 0.0, 0.7, 2.5, -1.25};
const std::vector<double> kTargets = {0, 1, 1, 0, 1, 0};

TEST(EmbedTest, DescribesTheCompiledLoss) {
  lf::Kernel kernel = compile_example("focal.loss");
  EXPECT_EQ(kernel.name(), "sigmoid_focal");
  ASSERT_EQ(kernel.inputs().size(), 2u);
  EXPECT_EQ(kernel.inputs()[0].name, "x");
  EXPECT_TRUE(kernel.inputs()[0].pred);
  EXPECT_EQ(kernel.inputs()[0].kind, lf::InputKind::Real);
  EXPECT_FALSE(kernel.inputs()[1].pred);
  ASSERT_EQ(kernel.params().size(), 2u);
  EXPECT_EQ(kernel.params()[0].name, "alpha");
  EXPECT_EQ(kernel.params()[0].default_value, 0.25);
  EXPECT_EQ(kernel.params()[1].name, "gamma");
  EXPECT_NE(kernel.backend(), lf::Backend::Auto);
  EXPECT_NE(kernel.text().find("loss sigmoid_focal("), std::string::npos) << kernel.text();
  EXPECT_FALSE(lf::version().empty());
  EXPECT_EQ(lf::kApiVersion, 1);
}

TEST(EmbedTest, ValuesAndGradientsMatchTheFormulaAndFiniteDifferences) {
  lf::Kernel kernel = compile_example("focal.loss");
  auto out = kernel.run({{kLogits}, {kTargets}});
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_EQ(out->loss.size(), kLogits.size());
  ASSERT_EQ(out->gradients.size(), 1u);
  ASSERT_EQ(out->gradients[0].size(), kLogits.size());
  for (size_t r = 0; r < kLogits.size(); ++r) {
    SCOPED_TRACE(r);
    EXPECT_NEAR(out->loss[r], focal(kLogits[r], kTargets[r]), 1e-12);
    const double h = 1e-6;
    const double numeric = (focal(kLogits[r] + h, kTargets[r]) - focal(kLogits[r] - h, kTargets[r])) / (2 * h);
    EXPECT_NEAR(out->gradients[0][r], numeric, 1e-7);
  }
  // float agrees with double to float precision.
  std::vector<float> x(kLogits.begin(), kLogits.end()), y(kTargets.begin(), kTargets.end());
  auto single = kernel.run({{x}, {y}});
  ASSERT_TRUE(single) << single.error().message;
  for (size_t r = 0; r < x.size(); ++r) {
    EXPECT_NEAR(single->loss[r], out->loss[r], 1e-6);
    EXPECT_NEAR(single->gradients[0][r], out->gradients[0][r], 1e-6);
  }
}

TEST(EmbedTest, ParamsOverrideTheirDefaults) {
  lf::Kernel kernel = compile_example("focal.loss");
  lf::RunOptions<double> options;
  options.params = {{"gamma", 0.0}, {"alpha", 0.5}};
  options.gradients = false;
  auto out = kernel.run({{kLogits}, {kTargets}}, options);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->gradients.empty());
  for (size_t r = 0; r < kLogits.size(); ++r) EXPECT_NEAR(out->loss[r], focal(kLogits[r], kTargets[r], 0.5, 0), 1e-12);
}

TEST(EmbedTest, WeightsAndEveryReduction) {
  lf::Kernel kernel = compile_example("focal.loss");
  auto rows = kernel.run({{kLogits}, {kTargets}});
  ASSERT_TRUE(rows);
  const std::vector<double> weights = {1, 0.5, 2, 0, 1, 3};
  double weighted_sum = 0;
  for (size_t r = 0; r < weights.size(); ++r) weighted_sum += weights[r] * rows->loss[r];
  const double n = static_cast<double>(kLogits.size());
  const double avg_factor = 4;
  const double eps = 1.1920928955078125e-07;

  struct Case {
    lf::Reduction reduction;
    double expected;
    double scale;
  };
  for (const Case& c : {Case{lf::Reduction::Sum, weighted_sum, 1.0}, Case{lf::Reduction::Mean, weighted_sum / n, 1 / n},
                        Case{lf::Reduction::SumOverAvgFactor, weighted_sum / (avg_factor + eps), 1 / (avg_factor + eps)}}) {
    SCOPED_TRACE(static_cast<int>(c.reduction));
    lf::RunOptions<double> options;
    options.reduction = c.reduction;
    options.weights = weights;
    options.avg_factor = avg_factor;
    auto out = kernel.run({{kLogits}, {kTargets}}, options);
    ASSERT_TRUE(out) << out.error().message;
    ASSERT_EQ(out->loss.size(), 1u);
    EXPECT_NEAR(out->loss[0], c.expected, 1e-12);
    for (size_t r = 0; r < weights.size(); ++r) {
      EXPECT_NEAR(out->gradients[0][r], weights[r] * c.scale * rows->gradients[0][r], 1e-12);
    }
  }
  lf::RunOptions<double> none;
  none.weights = weights;
  auto out = kernel.run({{kLogits}, {kTargets}}, none);
  ASSERT_TRUE(out);
  for (size_t r = 0; r < weights.size(); ++r) {
    EXPECT_NEAR(out->loss[r], weights[r] * rows->loss[r], 1e-12);
    EXPECT_NEAR(out->gradients[0][r], weights[r] * rows->gradients[0][r], 1e-12);
  }
}

TEST(EmbedTest, ZeroRows) {
  lf::Kernel kernel = compile_example("focal.loss");
  std::vector<float> empty;
  auto rows = kernel.run({{empty}, {empty}});
  ASSERT_TRUE(rows) << rows.error().message;
  EXPECT_TRUE(rows->loss.empty());
  lf::RunOptions<float> mean;
  mean.reduction = lf::Reduction::Mean;
  auto reduced = kernel.run({{empty}, {empty}}, mean);
  ASSERT_TRUE(reduced) << reduced.error().message;
  EXPECT_EQ(reduced->loss, std::vector<float>{0.0f});
  ASSERT_EQ(reduced->gradients.size(), 1u);
  EXPECT_TRUE(reduced->gradients[0].empty());
}

TEST(EmbedTest, RowAndBoxInputs) {
  lf::Kernel ce = compile_example("cross_entropy.loss");
  EXPECT_EQ(ce.inputs()[0].kind, lf::InputKind::Row);
  EXPECT_EQ(ce.inputs()[0].width_name, "C");
  const std::vector<double> logits = {1, 2, 3, -1, 0, 1};  // two rows of three classes
  const std::vector<double> onehot = {0, 0, 1, 1, 0, 0};
  auto out = ce.run({{logits, 3}, {onehot, 3}});
  ASSERT_TRUE(out) << out.error().message;
  ASSERT_EQ(out->loss.size(), 2u);
  const double lse0 = std::log(std::exp(1) + std::exp(2) + std::exp(3));
  const double lse1 = std::log(std::exp(-1) + std::exp(0) + std::exp(1));
  EXPECT_NEAR(out->loss[0], lse0 - 3, 1e-12);
  EXPECT_NEAR(out->loss[1], lse1 + 1, 1e-12);
  ASSERT_EQ(out->gradients[0].size(), 6u);
  EXPECT_NEAR(out->gradients[0][2], std::exp(3 - lse0) - 1, 1e-12);  // softmax - onehot

  auto mismatch = ce.run({{logits, 3}, {onehot, 2}});
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().kind, lf::ErrorKind::InvalidArgument);

  lf::Kernel giou = compile_example("giou.loss");
  EXPECT_EQ(giou.inputs()[0].kind, lf::InputKind::Box);
  const std::vector<float> boxes = {0, 0, 2, 2};
  auto same = giou.run({{boxes, 4}, {boxes, 4}});
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_NEAR(same->loss[0], 0.0f, 1e-6f);
  ASSERT_EQ(same->gradients[0].size(), 4u);
  auto wrong_width = giou.run({{boxes, 2}, {boxes, 2}});
  ASSERT_FALSE(wrong_width);
  EXPECT_EQ(wrong_width.error().kind, lf::ErrorKind::InvalidArgument);
  EXPECT_NE(wrong_width.error().message.find("width 4"), std::string::npos) << wrong_width.error().message;
}

TEST(EmbedTest, BareFormulaWithAPreset) {
  lf::CompileOptions options;
  options.preset = "binary_cls";
  auto kernel = lf::compile("Neg(Log(Sig(X)))", options);
  ASSERT_TRUE(kernel) << kernel.error().message;
  ASSERT_EQ(kernel->inputs().size(), 4u);  // X, Q, PY, NY
  std::vector<double> x = {-1, 0, 2}, zeros(3, 0.0);
  auto out = kernel->run({{x}, {zeros}, {zeros}, {zeros}});
  ASSERT_TRUE(out) << out.error().message;
  for (size_t r = 0; r < x.size(); ++r) {
    EXPECT_NEAR(out->loss[r], -std::log(sigmoid(x[r])), 1e-12);
    EXPECT_NEAR(out->gradients[0][r], -(1 - sigmoid(x[r])), 1e-12);
  }
}

TEST(EmbedTest, CompileErrorsAreValuesWithAKind) {
  auto syntax = lf::compile("loss broken(pred x: real) = sigmod(x)\n");
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().kind, lf::ErrorKind::Syntax);
  EXPECT_NE(syntax.error().message.find("<text>:1:"), std::string::npos) << syntax.error().message;
  EXPECT_NE(syntax.error().message.find("sigmoid"), std::string::npos) << syntax.error().message;
  EXPECT_EQ(lf::to_string(syntax.error().kind), "syntax");

  lf::CompileOptions named;
  named.source_name = "mine.loss";
  auto garbage = lf::compile("loss (((", named);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().kind, lf::ErrorKind::Syntax);
  EXPECT_EQ(garbage.error().message.rfind("mine.loss:", 0), 0u) << garbage.error().message;

  auto missing = lf::compile_file(kExamples + "no_such.loss");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, lf::ErrorKind::NotFound);

  lf::CompileOptions wrong_name;
  wrong_name.loss = "focal";
  auto unknown = lf::compile_file(kExamples + "focal.loss", wrong_name);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, lf::ErrorKind::NotFound);
  EXPECT_NE(unknown.error().message.find("sigmoid_focal"), std::string::npos) << unknown.error().message;

  auto ambiguous = lf::compile("loss a(pred x: real) = x\nloss b(pred x: real) = -x\n");
  ASSERT_FALSE(ambiguous);
  EXPECT_EQ(ambiguous.error().kind, lf::ErrorKind::InvalidArgument);
  EXPECT_NE(ambiguous.error().message.find("a, b"), std::string::npos) << ambiguous.error().message;
  lf::CompileOptions pick_b;
  pick_b.loss = "b";
  auto b = lf::compile("loss a(pred x: real) = x\nloss b(pred x: real) = -x\n", pick_b);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->name(), "b");

  lf::CompileOptions bad_preset;
  bad_preset.preset = "detection";
  auto preset = lf::compile("X", bad_preset);
  ASSERT_FALSE(preset);
  EXPECT_EQ(preset.error().kind, lf::ErrorKind::InvalidArgument);

  auto empty = lf::compile("# nothing here\n");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().kind, lf::ErrorKind::NotFound);

  lf::Result<lf::Kernel> failed = lf::compile("loss (");
  EXPECT_FALSE(failed.ok());
  EXPECT_DEATH((void)failed.value(), "value\\(\\) called on a failed Result");
}

TEST(EmbedTest, BackendChoice) {
  lf::CompileOptions interpreter;
  interpreter.backend = lf::Backend::Interpreter;
  auto kernel = lf::compile_file(kExamples + "focal.loss", interpreter);
  ASSERT_TRUE(kernel) << kernel.error().message;
  EXPECT_EQ(kernel->backend(), lf::Backend::Interpreter);
  EXPECT_TRUE(lf::backend_available(lf::Backend::Auto));
  EXPECT_TRUE(lf::backend_available(lf::Backend::Interpreter));

  lf::CompileOptions llvm;
  llvm.backend = lf::Backend::Llvm;
  auto jit = lf::compile_file(kExamples + "focal.loss", llvm);
  if (lf::backend_available(lf::Backend::Llvm)) {
    ASSERT_TRUE(jit) << jit.error().message;
    EXPECT_EQ(jit->backend(), lf::Backend::Llvm);
    auto a = jit->run({{kLogits}, {kTargets}});
    auto b = kernel->run({{kLogits}, {kTargets}});
    ASSERT_TRUE(a && b);
    for (size_t r = 0; r < kLogits.size(); ++r) {
      EXPECT_NEAR(a->loss[r], b->loss[r], 1e-12);
      EXPECT_NEAR(a->gradients[0][r], b->gradients[0][r], 1e-12);
    }
    // The object code went to the kernel cache; a second kernel of the same loss loads it.
    size_t entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(kCacheDir)) entries += entry.path().extension() == ".lfk";
    EXPECT_GE(entries, 1u);
    auto again = lf::compile_file(kExamples + "focal.loss", llvm);
    ASSERT_TRUE(again);
    auto c = again->run({{kLogits}, {kTargets}});
    ASSERT_TRUE(c);
    EXPECT_EQ(c->loss, a->loss);
    // The quick-compile tier is a separate cache entry computing the same values.
    lf::CompileOptions quick = llvm;
    quick.quick_compile = true;
    auto fast = lf::compile_file(kExamples + "focal.loss", quick);
    ASSERT_TRUE(fast) << fast.error().message;
    auto d = fast->run({{kLogits}, {kTargets}});
    ASSERT_TRUE(d);
    size_t entries_after = 0;
    for (const auto& entry : std::filesystem::directory_iterator(kCacheDir))
      entries_after += entry.path().extension() == ".lfk";
    EXPECT_EQ(entries_after, entries + 1);
    for (size_t r = 0; r < kLogits.size(); ++r) {
      EXPECT_NEAR(d->loss[r], b->loss[r], 1e-12);
      EXPECT_NEAR(d->gradients[0][r], b->gradients[0][r], 1e-12);
    }
  } else {
    ASSERT_FALSE(jit);
    EXPECT_EQ(jit.error().kind, lf::ErrorKind::Unavailable);
  }
}

TEST(EmbedTest, RunErrorsAreValuesWithAKind) {
  lf::Kernel kernel = compile_example("focal.loss");
  auto expect_invalid = [](const auto& result, const std::string& fragment) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().kind, lf::ErrorKind::InvalidArgument);
    EXPECT_NE(result.error().message.find(fragment), std::string::npos) << result.error().message;
  };
  std::vector<double> three = {1, 2, 3}, two = {1, 2};
  expect_invalid(kernel.run({{three}}), "takes 2 inputs (x, y), got 1");
  expect_invalid(kernel.run({{three}, {two}}), "rows");
  expect_invalid(kernel.run({{three}, {three, 3}}), "width 1");
  expect_invalid(kernel.run({{three}, {three, 0}}), "width 0");

  lf::RunOptions<double> unknown_param;
  unknown_param.params = {{"beta", 1}};
  expect_invalid(kernel.run({{three}, {three}}, unknown_param), "no param 'beta' (it has: alpha, gamma)");
  lf::RunOptions<double> nan_param;
  nan_param.params = {{"gamma", std::nan("")}};
  expect_invalid(kernel.run({{three}, {three}}, nan_param), "finite");
  lf::RunOptions<double> short_weights;
  short_weights.weights = two;
  expect_invalid(kernel.run({{three}, {three}}, short_weights), "weights hold 2 values for 3 rows");
  lf::RunOptions<double> negative_avg;
  negative_avg.reduction = lf::Reduction::SumOverAvgFactor;
  negative_avg.avg_factor = -1;
  expect_invalid(kernel.run({{three}, {three}}, negative_avg), "avg_factor");
}

TEST(EmbedTest, OneKernelRunsOnManyThreadsAndCopiesShareIt) {
  lf::Kernel kernel = compile_example("focal.loss");
  auto expected = kernel.run({{kLogits}, {kTargets}});
  ASSERT_TRUE(expected);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t, copy = kernel] {
      for (int i = 0; i < 50; ++i) {
        auto out = copy.run({{kLogits}, {kTargets}});
        if (!out || out->loss != expected->loss || out->gradients != expected->gradients) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
