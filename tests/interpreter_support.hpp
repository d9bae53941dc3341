// Helpers for the interpreter tests: losses built straight from IR, batches,
// and central finite differences.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/loss.hpp"
#include "runtime/interpreter.hpp"

namespace lossforge::testing {

using Rng = std::mt19937_64;
template <class T>
using Batch = std::vector<Array<T>>;

inline Type real_type() { return Type::real(); }
inline Type vec_type(std::string_view width = "C") { return Type::vec(Symbol::intern(width)); }
inline Type box_type() { return Type::box(); }

// Builds a Loss input by input; each input() returns the Expr to use in the body.
class LossBuilder {
 public:
  explicit LossBuilder(std::string name = "test") { loss_.name = std::move(name); }

  Expr input(std::string name, Type type, bool pred) {
    int index = static_cast<int>(loss_.inputs.size());
    loss_.inputs.push_back({name, type, pred});
    return lossforge::input(index, std::move(name), type);
  }
  Expr pred(std::string name, Type type = Type::real()) { return input(std::move(name), type, true); }
  Expr data(std::string name, Type type = Type::real()) { return input(std::move(name), type, false); }
  Expr param(std::string name, double value) {
    int index = static_cast<int>(loss_.params.size());
    loss_.params.push_back({name, value});
    return lossforge::param(index, std::move(name));
  }
  Loss build(Expr body) {
    Loss out = loss_;
    out.body = std::move(body);
    return out;
  }

 private:
  Loss loss_;
};

inline Expr num(double value) { return constant(value); }
inline Expr call(Op op, std::initializer_list<Expr> args) { return make(op, args); }

template <class T>
Evaluation<T> evaluate(const Loss& loss, const Batch<T>& batch, bool gradients = true,
                       std::vector<double> params = {}) {
  EvalOptions options;
  options.gradients = gradients;
  options.params = std::move(params);
  return interpret<T>(loss, std::span<const Array<T>>(batch), options);
}

inline Batch<float> to_float(const Batch<double>& batch) {
  Batch<float> out;
  for (const Array<double>& a : batch)
    out.emplace_back(a.rows, a.width, std::vector<float>(a.data.begin(), a.data.end()));
  return out;
}

// A column of rows: one value per row.
inline Array<double> column(std::vector<double> values) {
  size_t rows = values.size();
  return Array<double>(rows, 1, std::move(values));
}
// Rows of equal width, written out.
inline Array<double> rows_of(std::vector<std::vector<double>> rows) {
  Array<double> out(rows.size(), rows.empty() ? 0 : rows[0].size());
  for (size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].begin(), rows[r].end(), out.row(r));
  return out;
}

inline double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
inline double random_sign(Rng& rng) { return std::bernoulli_distribution(0.5)(rng) ? 1.0 : -1.0; }

// Central differences of every row's loss with respect to every value of input
// `which`. Rows are independent, so one column of all rows moves at once.
inline Array<double> numeric_gradient(const Loss& loss, Batch<double> batch, size_t which) {
  Array<double>& x = batch[which];
  Array<double> grad(x.rows, x.width);
  for (size_t col = 0; col < x.width; ++col) {
    std::vector<double> original(x.rows), step(x.rows);
    for (size_t r = 0; r < x.rows; ++r) {
      original[r] = x.row(r)[col];
      step[r] = 1e-6 * std::max(1.0, std::fabs(original[r]));
    }
    for (size_t r = 0; r < x.rows; ++r) x.row(r)[col] = original[r] + step[r];
    std::vector<double> up = evaluate(loss, batch, false).loss;
    for (size_t r = 0; r < x.rows; ++r) x.row(r)[col] = original[r] - step[r];
    std::vector<double> down = evaluate(loss, batch, false).loss;
    for (size_t r = 0; r < x.rows; ++r) {
      x.row(r)[col] = original[r];
      grad.row(r)[col] = (up[r] - down[r]) / (2 * step[r]);
    }
  }
  return grad;
}

// |actual - expected| <= tolerance * max(1, |expected|), element by element.
template <class T>
::testing::AssertionResult close_to(const std::vector<T>& actual, const std::vector<double>& expected,
                                    double tolerance) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "size " << actual.size() << " != " << expected.size();
  for (size_t i = 0; i < actual.size(); ++i) {
    double a = static_cast<double>(actual[i]), e = expected[i];
    bool ok = (std::isnan(e) && std::isnan(a)) || (std::isinf(e) && a == e) ||
              std::fabs(a - e) <= tolerance * std::max(1.0, std::fabs(e));
    if (!ok) return ::testing::AssertionFailure() << "at " << i << ": " << a << " vs expected " << e;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace lossforge::testing
