// Inputs shared by the benchmarks: the example losses, and detection-like
// random data for them (sizes are each benchmark's choice). Every generator
// draws from the caller's Rng in a fixed order, so one seed gives one data set.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/frontend.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::bench {

using Rng = std::mt19937_64;
inline constexpr size_t kClasses = 81;  // 80 COCO classes and background

// The source tree holding examples/: $LOSSFORGE_SOURCE_DIR when set (a binary
// copied to another machine), else the tree it was built from.
inline std::string source_dir() {
  const char* dir = std::getenv("LOSSFORGE_SOURCE_DIR");
  return dir && *dir ? dir : LOSSFORGE_SOURCE_DIR;
}

inline std::string example_path(const std::string& file) { return source_dir() + "/examples/losses/" + file; }

inline Loss example(const std::string& file, const std::string& name) {
  Module module = load_module(SourceFile::read(example_path(file)));
  const Loss* loss = module.find(name);
  if (!loss) throw std::runtime_error(file + " has no loss " + name);
  return *loss;
}

inline double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

template <class T>
Array<T> column(size_t rows, Rng& rng, double lo, double hi) {
  Array<T> a(rows, 1);
  for (T& v : a.data) v = T(uniform(rng, lo, hi));
  return a;
}

template <class T>
Array<T> labels(size_t rows, Rng& rng, double positive_rate) {
  Array<T> a(rows, 1);
  for (T& v : a.data) v = std::bernoulli_distribution(positive_rate)(rng) ? T(1) : T(0);
  return a;
}

// Focal: logits of mostly easy negatives, 5% positive labels.
template <class T>
std::vector<Array<T>> focal_inputs(Rng& rng, size_t elements) {
  return {column<T>(elements, rng, -6, 2), labels<T>(elements, rng, 0.05)};
}

// binary_cls preset: X, Q (IoU at the GT class of positives), PY, NY = 1 - PY.
template <class T>
std::vector<Array<T>> binary_cls_inputs(Rng& rng, size_t elements) {
  Array<T> x = column<T>(elements, rng, -6, 2), py = labels<T>(elements, rng, 0.05);
  Array<T> q(elements, 1), ny(elements, 1);
  for (size_t i = 0; i < elements; ++i) {
    ny.data[i] = T(1) - py.data[i];
    q.data[i] = py.data[i] == T(1) ? T(uniform(rng, 0.3, 0.95)) : T(0);
  }
  return {x, q, py, ny};
}

// x logits and y one-hot rows of kClasses; with `with_z`, also Z (scores in [0, 1]).
template <class T>
std::vector<Array<T>> multi_cls_inputs(Rng& rng, size_t rows, bool with_z = false) {
  Array<T> x(rows, kClasses), y(rows, kClasses);
  for (T& v : x.data) v = T(uniform(rng, -4, 4));
  for (size_t r = 0; r < rows; ++r) y.row(r)[std::uniform_int_distribution<size_t>(0, kClasses - 1)(rng)] = T(1);
  std::vector<Array<T>> out{x, y};
  if (with_z) {
    Array<T> z(rows, kClasses);
    for (T& v : z.data) v = T(uniform(rng, 0, 1));
    out.push_back(z);
  }
  return out;
}

// Box pairs P, G: a ground truth and a prediction shifted and rescaled around
// it, mostly overlapping, some disjoint.
template <class T>
std::vector<Array<T>> box_inputs(Rng& rng, size_t pairs) {
  Array<T> p(pairs, 4), g(pairs, 4);
  for (size_t r = 0; r < pairs; ++r) {
    double x = uniform(rng, 0, 600), y = uniform(rng, 0, 400), w = uniform(rng, 8, 300), h = uniform(rng, 8, 300);
    double px = x + uniform(rng, -0.8, 0.8) * w, py = y + uniform(rng, -0.8, 0.8) * h;
    double gv[] = {x, y, x + w, y + h};
    double pv[] = {px, py, px + w * uniform(rng, 0.6, 1.6), py + h * uniform(rng, 0.6, 1.6)};
    for (int c = 0; c < 4; ++c) {
      g.row(r)[c] = T(gv[c]);
      p.row(r)[c] = T(pv[c]);
    }
  }
  return {p, g};
}

// ---- agreement checks: a baseline (LibTorch, hand-written C++) against the interpreter ----

// The first `rows` rows of an input.
inline Array<float> head(const Array<float>& a, size_t rows) {
  return Array<float>(rows, a.width, std::vector<float>(a.data.begin(), a.data.begin() + ptrdiff_t(rows * a.width)));
}

// Largest |got - ref| over (|ref| + 1e-3 · max|ref|): relative for values of
// the array's own scale, absolute (at 1e-3 of the largest) for those near 0.
// NaN (or a size mismatch) gives NaN, which fails any `<=` check.
inline double deviation(std::span<const float> got, std::span<const float> ref) {
  if (got.size() != ref.size()) return std::nan("");
  double scale = 0;
  for (float r : ref) scale = std::max(scale, double(std::fabs(r)));
  double worst = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    const double err = std::fabs(double(got[k]) - double(ref[k])) / (std::fabs(double(ref[k])) + 1e-3 * scale + 1e-30);
    if (!(err <= worst)) worst = err;  // NaN propagates
  }
  return worst;
}

// float32 against float32: a few hundred ulp; on the first kCheckRows rows
// (not a whole number of vectors or blocks of rows: the baselines' last,
// partial ones are checked too).
inline constexpr double kAgreement = 1e-4;
inline constexpr size_t kCheckRows = 4093;

}  // namespace lossforge::bench
