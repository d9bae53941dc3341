#include "compiler/value_range.hpp"

#include <algorithm>
#include <array>

#include "compiler/semantics.hpp"

namespace lossforge {
namespace {

// ---- folding: operator -> scalar semantics ------------------------------------
using Scalar = double (*)(const double*);
struct ScalarEntry {
  Op op;
  Scalar eval;
};
template <double (*F)(double)>
double unary(const double* a) { return F(a[0]); }
template <double (*F)(double, double)>
double binary(const double* a) { return F(a[0], a[1]); }
double clamp3(const double* a) { return sem::clamp(a[0], a[1], a[2]); }
double where3(const double* a) { return sem::where(a[0], a[1], a[2]); }

// clang-format off
constexpr ScalarEntry kScalar[] = {
  {Op::Add, binary<sem::add<double>>}, {Op::Sub, binary<sem::sub<double>>}, {Op::Mul, binary<sem::mul<double>>},
  {Op::Div, binary<sem::div<double>>}, {Op::Neg, unary<sem::neg<double>>},  {Op::Pow, binary<sem::pow<double>>},
  {Op::Log, unary<sem::log<double>>},  {Op::Exp, unary<sem::exp<double>>},  {Op::Sqrt, unary<sem::sqrt<double>>},
  {Op::Abs, unary<sem::abs<double>>},  {Op::Sin, unary<sem::sin<double>>},  {Op::Cos, unary<sem::cos<double>>},
  {Op::Tanh, unary<sem::tanh<double>>}, {Op::Relu, unary<sem::relu<double>>},
  {Op::Softplus, unary<sem::softplus<double>>}, {Op::Sigmoid, unary<sem::sigmoid<double>>},
  {Op::Serf, unary<sem::serf<double>>}, {Op::Salf, unary<sem::salf<double>>}, {Op::Sgdf, unary<sem::sgdf<double>>},
  {Op::Erf, unary<sem::erf<double>>},  {Op::Erfc, unary<sem::erfc<double>>},
  {Op::Min, binary<sem::min<double>>}, {Op::Max, binary<sem::max<double>>}, {Op::Clamp, clamp3},
  {Op::Where, where3}, {Op::MinShare, binary<sem::min_share<double>>}, {Op::MaxShare, binary<sem::max_share<double>>},
};
// clang-format on

const std::array<Scalar, kOpCount>& scalar_table() {
  static const std::array<Scalar, kOpCount> table = [] {
    std::array<Scalar, kOpCount> t{};
    for (const ScalarEntry& e : kScalar) t[static_cast<int>(e.op)] = e.eval;
    return t;
  }();
  return table;
}

// ---- interval helpers -----------------------------------------------------------
constexpr double kInf = HUGE_VAL;

ValueRange exact(double lo, double hi, const ValueRange& from) { return {lo, hi, from.may_be_nan, from.slope_may_blow}; }

ValueRange merge_flags(ValueRange r, std::span<const ValueRange> args) {
  for (const ValueRange& a : args) {
    r.may_be_nan = r.may_be_nan || a.may_be_nan;
    r.slope_may_blow = r.slope_may_blow || a.slope_may_blow;
  }
  return r;
}

// a * b of bounds, with 0 * inf taken as the infinite side (conservative).
double times(double a, double b) {
  if (a == 0 || b == 0) return (std::isinf(a) || std::isinf(b)) ? kInf : 0;
  return a * b;
}

ValueRange product(const ValueRange& a, const ValueRange& b) {
  const double c[] = {times(a.lo, b.lo), times(a.lo, b.hi), times(a.hi, b.lo), times(a.hi, b.hi)};
  double lo = *std::min_element(std::begin(c), std::end(c)), hi = *std::max_element(std::begin(c), std::end(c));
  // times() answers +inf for 0 * inf; the true product may then be -inf too.
  for (double v : c)
    if (v == kInf && (std::isinf(a.lo) || std::isinf(a.hi) || std::isinf(b.lo) || std::isinf(b.hi))) lo = -kInf;
  return {lo, hi, false, false};
}

double magnitude(const ValueRange& r) { return std::max(std::fabs(r.lo), std::fabs(r.hi)); }

// The image of a monotone element-wise op: evaluate it at the ends.
ValueRange monotone(Op op, const ValueRange& a, bool increasing) {
  double lo = *evaluate_scalar(op, std::span(&a.lo, 1)), hi = *evaluate_scalar(op, std::span(&a.hi, 1));
  if (!increasing) std::swap(lo, hi);
  return exact(lo, hi, a);
}

// Rows have at most 2^31 columns: bounds of sums over a row.
constexpr double kMaxColumns = 2147483648.0;
constexpr double kLogMaxColumns = 21.5;  // ln(2^31)
// ln(a + 1e-20) is at least ln(1e-36) where a + 1e-20 > 0 (see the header).
constexpr double kLogFloor = -82.9;

}  // namespace

std::optional<double> evaluate_scalar(Op op, std::span<const double> args) {
  const Scalar f = scalar_table()[static_cast<int>(op)];
  if (!f || static_cast<int>(args.size()) != op_info(op).arity) return std::nullopt;
  return f(args.data());
}

const ValueRange& RangeAnalysis::operator()(const Expr& e) {
  // Children first, iteratively, so that deep expressions do not recurse.
  for (const Node* n : topological_order(e)) {
    if (memo_.count(n)) continue;
    ValueRange r = compute(*n);
    keep_.push_back(Expr::share(n));
    memo_.emplace(n, r);
  }
  return memo_.at(e.get());
}

ValueRange RangeAnalysis::compute(const Node& n) {
  std::array<ValueRange, 3> a;
  for (size_t i = 0; i < n.args().size(); ++i) a[i] = memo_.at(n.arg(i).get());
  const std::span<const ValueRange> args(a.data(), n.args().size());
  const ValueRange widest{};
  auto plain = [](double lo, double hi) { return ValueRange{lo, hi, false, false}; };
  switch (n.op()) {
    case Op::Const: return plain(n.value(), n.value());
    case Op::Input:
    case Op::Param: return plain(-kInputBound, kInputBound);
    case Op::Field: return a[0];
    case Op::Add: return merge_flags(plain(a[0].lo + a[1].lo, a[0].hi + a[1].hi), args);
    case Op::Sub: return merge_flags(plain(a[0].lo - a[1].hi, a[0].hi - a[1].lo), args);
    case Op::Neg: return exact(-a[0].hi, -a[0].lo, a[0]);
    case Op::Mul: return merge_flags(product(a[0], a[1]), args);
    case Op::Div: {
      const double d_lo = a[1].lo + sem::kDivEps, d_hi = a[1].hi + sem::kDivEps;
      if (d_lo > 0 || d_hi < 0) {
        const ValueRange inverse = plain(1 / d_hi, 1 / d_lo);
        return merge_flags(product(a[0], inverse), args);
      }
      const double m = times(magnitude(a[0]), kDivGain);
      return merge_flags(plain(-m, m), args);
    }
    case Op::Log: {
      ValueRange r = merge_flags(plain(kLogFloor, std::log(std::max(a[0].hi + sem::kLogEps, 1e-36))), args);
      if (a[0].lo + sem::kLogEps > 0) r.lo = std::log(a[0].lo + sem::kLogEps);
      if (a[0].lo + sem::kLogEps < 0) r.may_be_nan = true;
      return r;
    }
    case Op::Sqrt: {
      ValueRange r = merge_flags(plain(0, std::sqrt(std::max(a[0].hi, 0.0))), args);
      if (a[0].lo > 0) r.lo = std::sqrt(a[0].lo);
      if (a[0].lo < 0) r.may_be_nan = true;
      if (a[0].lo <= 0) r.slope_may_blow = true;  // sqrt'(0) = inf
      return r;
    }
    case Op::Exp:
    case Op::Tanh:
    case Op::Relu:
    case Op::Softplus:
    case Op::Sigmoid:
    case Op::Serf:
    case Op::Salf:
    case Op::Sgdf:
    case Op::Erf: return monotone(n.op(), a[0], true);
    case Op::Erfc: return monotone(n.op(), a[0], false);
    case Op::Abs: {
      const double lo = a[0].lo > 0 ? a[0].lo : a[0].hi < 0 ? -a[0].hi : 0;
      return exact(lo, magnitude(a[0]), a[0]);
    }
    case Op::Sin:
    case Op::Cos: {
      ValueRange r = exact(-1, 1, a[0]);
      r.may_be_nan = r.may_be_nan || std::isinf(a[0].lo) || std::isinf(a[0].hi);  // sin(inf) is NaN
      return r;
    }
    case Op::Min: return merge_flags(plain(std::min(a[0].lo, a[1].lo), std::min(a[0].hi, a[1].hi)), args);
    case Op::Max: return merge_flags(plain(std::max(a[0].lo, a[1].lo), std::max(a[0].hi, a[1].hi)), args);
    case Op::Clamp: {
      const double lo = std::min(std::max(a[0].lo, a[1].lo), a[2].lo), hi = std::min(std::max(a[0].hi, a[1].hi), a[2].hi);
      return merge_flags(plain(std::min(lo, hi), std::max(lo, hi)), args);
    }
    case Op::Softmax: return exact(0, 1, a[0]);
    case Op::LogSoftmax: return exact(a[0].lo - a[0].hi - kLogMaxColumns, 0, a[0]);
    case Op::Logsumexp: return exact(a[0].lo, a[0].hi + kLogMaxColumns, a[0]);
    case Op::Dot: {
      ValueRange r = product(a[0], a[1]);
      return merge_flags(plain(times(r.lo, kMaxColumns), times(r.hi, kMaxColumns)), args);
    }
    case Op::Sum: return exact(times(std::min(a[0].lo, 0.0), kMaxColumns), times(std::max(a[0].hi, 0.0), kMaxColumns), a[0]);
    case Op::Mean: return a[0];
    case Op::Area: {
      const double side = a[0].hi - a[0].lo;
      return exact(-times(side, side), times(side, side), a[0]);
    }
    case Op::Inter:
    case Op::Enclose: {
      const double side = std::max(a[0].hi, a[1].hi) - std::min(a[0].lo, a[1].lo);
      return merge_flags(plain(0, times(side, side)), args);
    }
    case Op::Where: {
      ValueRange r = merge_flags(plain(std::min(a[1].lo, a[2].lo), std::max(a[1].hi, a[2].hi)), args);
      return r;
    }
    case Op::MinShare:
    case Op::MaxShare: return exact(0, 1, merge_flags(plain(0, 1), args));
    case Op::Pow:
    case Op::Iou:  // a plain division by a union that flipped boxes can make 0
      return widest;
  }
  return widest;  // an operator this analysis does not know
}

}  // namespace lossforge
