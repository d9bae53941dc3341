// Shared by the tests of the generated C++ (tests/aot/) and CUDA (tests/cuda/)
// code: the losses to compile (every example, random candidates of every
// preset), random batches with the awkward cases (exact zeros, ties, touching
// and identical boxes), and the oracle -- the interpreter running the kernel's
// roots, i.e. the same loss and gradient expressions the code generators get.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "compiler/autodiff.hpp"
#include "compiler/frontend.hpp"
#include "compiler/kernel.hpp"
#include "compiler/presets.hpp"
#include "runtime/input_check.hpp"
#include "runtime/interpreter.hpp"
#include "search/generate.hpp"

namespace lossforge::generated_testing {

template <class T>
using Batch = std::vector<Array<T>>;

inline constexpr size_t kWidth = 5;  // every real[C] of the random batches

inline std::vector<Loss> example_losses() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(LOSSFORGE_SOURCE_DIR "/examples/losses"))
    if (entry.path().extension() == ".loss") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::vector<Loss> out;
  for (const auto& file : files)
    for (Loss& loss : load_module(SourceFile::read(file.string())).losses) out.push_back(std::move(loss));
  return out;
}

// `count` random candidates of `preset` (extra operators included, so every
// operator of ops.hpp is met), as losses over the preset's inputs.
inline std::vector<Loss> random_candidates(const Preset& preset, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  GenerateOptions options;
  options.extra_ops = true;
  options.max_depth = 6;
  std::vector<Loss> out;
  for (const Expr& e : ramped_half_and_half(preset, rng, options, count)) {
    Loss loss;
    loss.name = preset.name + "_" + std::to_string(out.size());
    loss.inputs = preset.inputs;
    loss.body = e;
    loss.preset = preset.name;
    out.push_back(std::move(loss));
  }
  return out;
}

inline Kernel kernel_of(const Loss& loss, bool gradients = true) {
  return gradients ? gradient_kernel(loss, differentiate(loss)) : forward_kernel(loss);
}

inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

inline Batch<double> random_batch(const Loss& loss, size_t rows, std::mt19937_64& rng, size_t width = kWidth) {
  Batch<double> batch;
  for (const LossInput& in : loss.inputs) {
    const size_t w = in.type.is_real() ? 1 : in.type.is_box() ? 4 : numeric_width(in.type.width()).value_or(width);
    Array<double> a(rows, w);
    for (size_t r = 0; r < rows; ++r) {
      if (in.type.is_box()) {
        double x = uniform(rng, -2, 2), y = uniform(rng, -2, 2), bw = uniform(rng, 0.1, 3), bh = uniform(rng, 0.1, 3);
        double box[4] = {x, y, x + bw, y + bh};
        if (!batch.empty() && batch.back().width == 4 && r % 5 != 0) {
          const double* g = batch.back().row(r);
          for (int c = 0; c < 4; ++c) box[c] = g[c] + uniform(rng, -0.5, 0.5);
          box[2] = std::max(box[2], box[0] + 0.05);
          box[3] = std::max(box[3], box[1] + 0.05);
          if (r % 7 == 0) std::copy(g, g + 4, box);
        }
        std::copy(box, box + 4, a.row(r));
        continue;
      }
      for (size_t c = 0; c < w; ++c) {
        double v = uniform(rng, -3, 3);
        if (r % 11 == 3) v = 0;
        if (r % 13 == 5 && !batch.empty() && batch.back().width == w) v = batch.back().row(r)[c];
        a.row(r)[c] = v;
      }
    }
    batch.push_back(std::move(a));
  }
  return batch;
}

template <class T>
Batch<T> as(const Batch<double>& batch) {
  Batch<T> out;
  for (const Array<double>& a : batch) out.emplace_back(a.rows, a.width, std::vector<T>(a.data.begin(), a.data.end()));
  return out;
}

// The kernel's roots run by the interpreter: the loss, and each gradient part
// as a loss of its own (a real[C] part column by column through a one-hot probe).
template <class T>
Evaluation<T> interpret_roots(const Kernel& kernel, const Batch<T>& batch) {
  const Loss& loss = kernel.loss;
  Evaluation<T> out = interpret<T>(loss, std::span<const Array<T>>(batch));
  const size_t rows = out.loss.size();
  for (const InputGradient& g : kernel.gradients) {
    const Array<T>& input = batch[g.input];
    Array<T> grad(rows, input.width);
    const bool vec = loss.inputs[g.input].type.is_vec();
    for (size_t part = 0; part < g.parts.size(); ++part) {
      const Expr& root = g.parts[part];
      for (size_t col = 0; col < (vec ? input.width : 1); ++col) {
        Loss probe_loss = loss;
        Batch<T> probe_batch = batch;
        if (root->type().is_vec()) {
          const Expr probe = lossforge::input(int(loss.inputs.size()), "probe", root->type());
          probe_loss.inputs.push_back({"probe", root->type(), false});
          probe_loss.body = make(Op::Sum, {make(Op::Where, {probe, root, constant(0)})});
          Array<T> onehot(rows, input.width);
          for (size_t r = 0; r < rows; ++r) onehot.row(r)[col] = T(1);
          probe_batch.push_back(onehot);
        } else {
          probe_loss.body = root;
        }
        const std::vector<T> values = interpret<T>(probe_loss, std::span<const Array<T>>(probe_batch)).loss;
        for (size_t r = 0; r < rows; ++r) {
          if (vec) grad.row(r)[col] = values[r];
          else grad.row(r)[part] = values[r];
        }
      }
    }
    out.grads.push_back(std::move(grad));
  }
  return out;
}

// |actual - expected| <= tolerance * max(1, |expected|); NaN matches NaN, inf the same inf.
template <class T>
::testing::AssertionResult agree(const std::vector<T>& actual, const std::vector<T>& expected, double tol,
                                 const std::string& what) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " vs " << expected.size();
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const bool ok = (std::isnan(a) && std::isnan(e)) || (std::isinf(e) && a == e) ||
                    std::fabs(a - e) <= tol * std::max(1.0, std::fabs(e));
    if (!ok) return ::testing::AssertionFailure() << what << " at " << i << ": " << a << " vs expected " << e;
  }
  return ::testing::AssertionSuccess();
}

template <class T>
::testing::AssertionResult same_evaluation(const Evaluation<T>& actual, const Evaluation<T>& expected,
                                           const std::string& what, double tol) {
  if (auto r = agree(actual.loss, expected.loss, tol, what + " loss"); !r) return r;
  if (actual.grads.size() != expected.grads.size())
    return ::testing::AssertionFailure() << what << ": " << actual.grads.size() << " gradients vs "
                                         << expected.grads.size();
  for (size_t g = 0; g < actual.grads.size(); ++g)
    if (auto r = agree(actual.grads[g].data, expected.grads[g].data, tol, what + " gradient " + std::to_string(g)); !r)
      return r;
  return ::testing::AssertionSuccess();
}

}  // namespace lossforge::generated_testing
