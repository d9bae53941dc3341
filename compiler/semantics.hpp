// The exact float semantics of every operator (SPEC §3): values and derivatives.
//
// This header is the single definition every back end evaluates: the reference
// interpreter calls it directly, and the generated CPU and CUDA code is tested
// against the interpreter. It is header-only, templated on the float type T
// (float or double, which also decides the precision of every intermediate),
// free of the standard library beyond <cmath>, and every function is marked
// LF_HD so that the same code compiles for the device under CUDA.
//
// Conventions
//   * Element-wise op `f`: `f(a, ...)` is the value, `f_da(a, ...)`,
//     `f_db(...)`, ... the local partial derivatives at the same arguments.
//   * Row-wise ops work on one row of n >= 1 contiguous values; `*_vjp`
//     functions ADD the vector-Jacobian product into their gradient rows, so a
//     caller can accumulate adjoints from several uses of one value.
//   * Box ops take boxes as 4 contiguous values x1, y1, x2, y2; their `*_vjp`
//     functions add into the box gradients `dp` and `dg`, either of which may be
//     null when that box needs no gradient.
//   * Derivatives at kinks follow PyTorch, so training with a compiled loss
//     behaves as the eager PyTorch formula would (see each group).
//   * NaN propagates as in IEEE arithmetic (std::pow(NaN, 0) is still 1): the
//     kinked ops (min, max, clamp, relu, box sides) pick a NaN rather than drop
//     it, so a broken candidate loss shows as NaN instead of a plausible number.
#pragma once

#if defined(__CUDACC__)
#define LF_HD __host__ __device__
#else
#define LF_HD
#endif

#if !defined(__CUDACC_RTC__)
#include <cmath>
#endif

namespace lossforge::sem {

inline constexpr double kDivEps = 1e-20;  // a / (b + kDivEps)
inline constexpr double kLogEps = 1e-20;  // ln(a + kLogEps)
inline constexpr double kExpMax = 88;     // exp(min(a, kExpMax)): e^88 < FLT_MAX, so float never overflows
inline constexpr double kBoxEps = 1e-7;   // iou = inter / (union + kBoxEps)
inline constexpr double kPi = 3.14159265358979323846;
inline constexpr double kSqrtPi = 1.77245385090551602729;

// The math functions used below, in one place: the standard library on the
// host and under nvcc, CUDA's built-in overloads under NVRTC (no headers there).
namespace math {
#if defined(__CUDACC_RTC__)
using ::atan; using ::cos; using ::cosh; using ::erf; using ::erfc; using ::exp; using ::fabs;
using ::hypot; using ::log; using ::log1p; using ::pow; using ::sin; using ::sqrt; using ::tanh;
#else
using std::atan; using std::cos; using std::cosh; using std::erf; using std::erfc; using std::exp; using std::fabs;
using std::hypot; using std::log; using std::log1p; using std::pow; using std::sin; using std::sqrt; using std::tanh;
#endif
}  // namespace math

template <class T>
LF_HD bool is_nan(T a) { return a != a; }

// ---- min, max, clamp --------------------------------------------------------
// The value of a tie is the first argument (the same number either way); the
// gradient of a tie is split evenly between the two, as torch.minimum and
// torch.maximum do. That split is what makes a symmetric loss flat at its
// minimum: IoU losses at P == G tie on every coordinate. A NaN in either
// argument is picked, so it propagates. clamp(a, lo, hi) = min(max(a, lo), hi)
// follows torch.clamp instead: d/da = 1 on the closed interval [lo, hi].
template <class T>
LF_HD bool min_picks_a(T a, T b) { return a <= b || is_nan(a); }
template <class T>
LF_HD bool max_picks_a(T a, T b) { return a >= b || is_nan(a); }
// The first argument's share of the gradient of min(a, b): 1, 1/2 at a tie, or 0.
template <class T>
LF_HD T min_share_a(T a, T b) { return is_nan(a) || a < b ? T(1) : a == b ? T(0.5) : T(0); }
template <class T>
LF_HD T max_share_a(T a, T b) { return is_nan(a) || a > b ? T(1) : a == b ? T(0.5) : T(0); }

template <class T>
LF_HD T min(T a, T b) { return min_picks_a(a, b) ? a : b; }
template <class T>
LF_HD T min_da(T a, T b) { return min_share_a(a, b); }
template <class T>
LF_HD T min_db(T a, T b) { return T(1) - min_share_a(a, b); }

template <class T>
LF_HD T max(T a, T b) { return max_picks_a(a, b) ? a : b; }
template <class T>
LF_HD T max_da(T a, T b) { return max_share_a(a, b); }
template <class T>
LF_HD T max_db(T a, T b) { return T(1) - max_share_a(a, b); }

template <class T>
LF_HD T clamp(T a, T lo, T hi) { return min(max(a, lo), hi); }
template <class T>
LF_HD T clamp_da(T a, T lo, T hi) { return max_picks_a(a, lo) && min_picks_a(a, hi) ? T(1) : T(0); }
template <class T>
LF_HD T clamp_dlo(T a, T lo, T hi) { return !max_picks_a(a, lo) && min_picks_a(lo, hi) ? T(1) : T(0); }
template <class T>
LF_HD T clamp_dhi(T a, T lo, T hi) { return min_picks_a(max(a, lo), hi) ? T(0) : T(1); }

// ---- piecewise helpers: where, min_share, max_share ------------------------
// Not in the CSE-Autoloss space: symbolic derivatives (compiler/autodiff.hpp)
// write the slopes at kinks with them, so that printed gradients are DSL text
// computing exactly what the tape does.
//
// where(c, a, b) = c ? a : b with C's truthiness: a NaN condition picks a.
// Its gradient goes to the picked branch only (selected, not multiplied by 0/1,
// as torch.where does), and none to c. The shares are min_share_a and
// max_share_a above as values; they are flat (no gradient flows through them).
template <class T>
LF_HD T where(T c, T a, T b) { return c != T(0) ? a : b; }
template <class T>
LF_HD T min_share(T a, T b) { return min_share_a(a, b); }
template <class T>
LF_HD T max_share(T a, T b) { return max_share_a(a, b); }

// ---- arithmetic -------------------------------------------------------------
template <class T>
LF_HD T add(T a, T b) { return a + b; }
template <class T>
LF_HD T add_da(T, T) { return T(1); }
template <class T>
LF_HD T add_db(T, T) { return T(1); }

template <class T>
LF_HD T sub(T a, T b) { return a - b; }
template <class T>
LF_HD T sub_da(T, T) { return T(1); }
template <class T>
LF_HD T sub_db(T, T) { return T(-1); }

template <class T>
LF_HD T mul(T a, T b) { return a * b; }
template <class T>
LF_HD T mul_da(T, T b) { return b; }
template <class T>
LF_HD T mul_db(T a, T) { return a; }

template <class T>
LF_HD T neg(T a) { return -a; }
template <class T>
LF_HD T neg_da(T) { return T(-1); }

// Protected division: the search space of CSE-Autoloss divides by anything, so
// a zero denominator must give a large finite number, not inf or NaN.
// db = -a / (b + eps)^2, computed as -(a / d) / d so that a tiny d does not
// underflow d^2 to zero first.
template <class T>
LF_HD T div(T a, T b) { return a / (b + T(kDivEps)); }
template <class T>
LF_HD T div_da(T, T b) { return T(1) / (b + T(kDivEps)); }
template <class T>
LF_HD T div_db(T a, T b) {
  T d = b + T(kDivEps);
  return -(a / d) / d;
}

// std::pow, with PyTorch's derivative conventions: a zero exponent has zero
// slope in the base (even at a = 0, where b * a^(b-1) is 0 * inf), and the
// exponent's slope a^b ln(a) is taken as 0 where a = 0 and b >= 0 (its limit).
// For a < 0 the exponent's slope is NaN, as in PyTorch: callers must not use it
// when the exponent needs no gradient (the interpreter's activity analysis).
//
// Exponents 2, 1 and 0 are computed as products: a GPU's general powf costs
// about a hundred instructions, and focal loss's gamma = 2 is such an exponent.
// They are std::pow's results, NaN and signed zeros included, except that
// a * a is the correctly rounded square, which glibc's pow and powf miss by an
// ulp at rare bases (the LLVM back end multiplies too).
template <class T>
LF_HD T pow(T a, T b) {
  if (b == T(2)) return a * a;
  if (b == T(1)) return a;
  if (b == T(0)) return T(1);
  return math::pow(a, b);
}
template <class T>
LF_HD T pow_da(T a, T b) { return b == T(0) ? T(0) : b * pow(a, b - T(1)); }
template <class T>
LF_HD T pow_db(T a, T b) { return a == T(0) && b >= T(0) ? T(0) : math::pow(a, b) * math::log(a); }

// ---- protected log and exp --------------------------------------------------
// ln(a + 1e-20): log(0) is a large negative number instead of -inf.
template <class T>
LF_HD T log(T a) { return math::log(a + T(kLogEps)); }
template <class T>
LF_HD T log_da(T a) { return T(1) / (a + T(kLogEps)); }

// exp(min(a, 88)): never overflows float. Above the cap the value is constant,
// so the slope is 0 (min's tie rule: at a = 88 the slope is still e^88).
template <class T>
LF_HD T exp(T a) { return math::exp(min(a, T(kExpMax))); }
template <class T>
LF_HD T exp_da(T a) { return min_picks_a(a, T(kExpMax)) ? math::exp(a) : T(0); }

// ---- plain functions --------------------------------------------------------
// sqrt'(0) = inf and abs'(0) = 0, as in PyTorch.
template <class T>
LF_HD T sqrt(T a) { return math::sqrt(a); }
template <class T>
LF_HD T sqrt_da(T a) { return T(0.5) / math::sqrt(a); }

template <class T>
LF_HD T abs(T a) { return math::fabs(a); }
template <class T>
LF_HD T abs_da(T a) { return a > T(0) ? T(1) : a < T(0) ? T(-1) : T(0); }

template <class T>
LF_HD T sin(T a) { return math::sin(a); }
template <class T>
LF_HD T sin_da(T a) { return math::cos(a); }

template <class T>
LF_HD T cos(T a) { return math::cos(a); }
template <class T>
LF_HD T cos_da(T a) { return -math::sin(a); }

template <class T>
LF_HD T tanh(T a) { return math::tanh(a); }
template <class T>
LF_HD T tanh_da(T a) {
  T t = math::tanh(a);
  return T(1) - t * t;
}

template <class T>
LF_HD T erf(T a) { return math::erf(a); }
template <class T>
LF_HD T erf_da(T a) { return T(2 / kSqrtPi) * math::exp(-a * a); }

template <class T>
LF_HD T erfc(T a) { return math::erfc(a); }
template <class T>
LF_HD T erfc_da(T a) { return T(-2 / kSqrtPi) * math::exp(-a * a); }

// relu'(0) = 0, as PyTorch (unlike max(a, 0) under the tie rule).
template <class T>
LF_HD T relu(T a) { return a > T(0) || is_nan(a) ? a : T(0); }
template <class T>
LF_HD T relu_da(T a) { return a > T(0) ? T(1) : T(0); }

// ---- sigmoid and softplus: stable forms -------------------------------------
// 1 / (1 + e^-a) overflows e^-a for a << 0; the two-branch form only ever
// exponentiates a non-positive number. The slope is s * (1 - s) from the
// rounded s, as PyTorch computes it: it is 0 exactly where 1 - s rounds to 0,
// so that formulas built on 1 - sigmoid(x) (CSE-Autoloss-B's log(1 - sigmoid(x)))
// get the slope of what they compute, not sigmoid(-x) / 1e-20.
template <class T>
LF_HD T sigmoid(T a) {
  // One exp for both branches (e^-|a| is e^-a for a >= 0, e^a below), and the
  // same one as softplus(a)'s and softplus(-a)'s, for the compiler to share.
  T e = math::exp(-math::fabs(a));
  return (a >= T(0) ? T(1) : e) / (T(1) + e);
}
template <class T>
LF_HD T sigmoid_da(T a) {
  T y = sigmoid(a);
  return y * (T(1) - y);
}

// ln(1 + e^a) = max(a, 0) + ln(1 + e^-|a|): no overflow for large a, no loss
// of the tiny value for very negative a.
template <class T>
LF_HD T softplus(T a) { return (a > T(0) ? a : T(0)) + math::log1p(math::exp(-math::fabs(a))); }
template <class T>
LF_HD T softplus_da(T a) { return sigmoid(a); }

// ---- the scaled S-curves of CSE-Autoloss ------------------------------------
// Each maps the real line onto (0, 1) with value 1/2 and slope 1/4 at 0, like
// the sigmoid; they differ in how fast they saturate.
//
// serf(a) = (erf((√π/2)·a/2) + 1)/2;  serf'(a) = e^(-π a²/16) / 4.
template <class T>
LF_HD T serf(T a) { return (math::erf(T(kSqrtPi / 2) * a / T(2)) + T(1)) / T(2); }
template <class T>
LF_HD T serf_da(T a) {
  T u = T(kSqrtPi / 4) * a;
  return T(0.25) * math::exp(-u * u);
}

// salf(a) = ((a/2)/√(1+(a/2)²) + 1)/2;  salf'(a) = (1+(a/2)²)^(-3/2) / 4.
// √(1+u²) is hypot(1, u) so that u² cannot overflow for large |a|.
template <class T>
LF_HD T salf(T a) {
  T u = a / T(2);
  return (u / math::hypot(T(1), u) + T(1)) / T(2);
}
template <class T>
LF_HD T salf_da(T a) {
  T r = T(1) / math::hypot(T(1), a / T(2));
  return T(0.25) * r * r * r;
}

// sgdf(a) = ((2/π)·2·atan(tanh(πa/8)) + 1)/2, the scaled Gudermannian;
// sgdf'(a) = (1/4)(1 - t²)/(1 + t²) with t = tanh(πa/8), which is
// (1/4)/cosh(πa/4): that form keeps its accuracy where t rounds to ±1.
template <class T>
LF_HD T sgdf(T a) { return (T(2 / kPi) * T(2) * math::atan(math::tanh(T(kPi) * a / T(8))) + T(1)) / T(2); }
template <class T>
LF_HD T sgdf_da(T a) { return T(0.25) / math::cosh(T(kPi) * a / T(4)); }

// ---- row-wise ops -----------------------------------------------------------
// Row reductions (sums, dots, the row maximum) run in kRowLanes interleaved
// partial results: element i goes to lane i % kRowLanes, and the lanes are
// combined as a halving tree, lane l with lane l + 4, then l + 2, then l + 1:
//   ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
// That is the order a vector unit adds in, so the compiled kernels reduce rows
// with 8-wide vectors and still agree with this reference bit for bit, where a
// left-to-right sum would keep them scalar (no fast-math reassociation here).
inline constexpr int kRowLanes = 8;

template <class T, class Term>
LF_HD T row_sum_of(int n, Term term) {
  T lane[kRowLanes];
  for (int l = 0; l < kRowLanes; ++l) lane[l] = T(0);
  for (int i = 0; i < n; ++i) lane[i % kRowLanes] += term(i);
  for (int half = kRowLanes / 2; half > 0; half /= 2)
    for (int l = 0; l < half; ++l) lane[l] += lane[l + half];
  return lane[0];
}

// The row maximum, lane-wise as row_sum_of: every lane starts at x[0], takes
// x[i] when x[i] > lane, and the tree keeps the upper lane only when greater.
// NaNs are skipped unless x[0] is one; a NaN anywhere still reaches the result
// of softmax & co. through e^(x - max).
template <class T>
LF_HD T row_max(const T* x, int n) {
  T lane[kRowLanes];
  for (int l = 0; l < kRowLanes; ++l) lane[l] = x[0];
  for (int i = 0; i < n; ++i) lane[i % kRowLanes] = x[i] > lane[i % kRowLanes] ? x[i] : lane[i % kRowLanes];
  for (int half = kRowLanes / 2; half > 0; half /= 2)
    for (int l = 0; l < half; ++l) lane[l] = lane[l + half] > lane[l] ? lane[l + half] : lane[l];
  return lane[0];
}

template <class T>
LF_HD T sum(const T* x, int n) {
  return row_sum_of<T>(n, [&](int i) { return x[i]; });
}

// softmax, log_softmax and logsumexp subtract the row maximum before
// exponentiating: mathematically a no-op, but it keeps every exponent <= 0, so
// logits in the thousands neither overflow nor lose the differences between
// them. They use plain exp (the shift makes the protected one unnecessary).
template <class T>
LF_HD void softmax(const T* x, T* y, int n) {
  T m = row_max(x, n);
  for (int i = 0; i < n; ++i) y[i] = math::exp(x[i] - m);
  T total = sum(y, n);
  for (int i = 0; i < n; ++i) y[i] /= total;
}
// y = softmax(x): dx += y * (dy - Σ dy·y).
template <class T>
LF_HD void softmax_vjp(const T* y, const T* dy, T* dx, int n) {
  T inner = row_sum_of<T>(n, [&](int i) { return dy[i] * y[i]; });
  for (int i = 0; i < n; ++i) dx[i] += y[i] * (dy[i] - inner);
}

// x - max - ln Σ e^(x - max).
template <class T>
LF_HD void log_softmax(const T* x, T* y, int n) {
  T m = row_max(x, n);
  T total = row_sum_of<T>(n, [&](int i) { return math::exp(x[i] - m); });
  T log_total = math::log(total);
  for (int i = 0; i < n; ++i) y[i] = x[i] - m - log_total;
}
// y = log_softmax(x): dx += dy - softmax(x) Σ dy, with softmax(x) = e^y.
template <class T>
LF_HD void log_softmax_vjp(const T* y, const T* dy, T* dx, int n) {
  T total = sum(dy, n);
  for (int i = 0; i < n; ++i) dx[i] += dy[i] - math::exp(y[i]) * total;
}

// max + ln Σ e^(x - max). A row whose maximum is ±inf (or NaN) gives that
// maximum, as torch.logsumexp: inf - inf would otherwise make it NaN.
template <class T>
LF_HD T logsumexp(const T* x, int n) {
  T m = row_max(x, n);
  if (!(m - m == T(0))) return m;
  T total = row_sum_of<T>(n, [&](int i) { return math::exp(x[i] - m); });
  return m + math::log(total);
}
// value = logsumexp(x): dx += dvalue * softmax(x), with softmax(x) = e^(x - value).
template <class T>
LF_HD void logsumexp_vjp(const T* x, T value, T dvalue, T* dx, int n) {
  for (int i = 0; i < n; ++i) dx[i] += dvalue * math::exp(x[i] - value);
}

template <class T>
LF_HD T dot(const T* a, const T* b, int n) {
  return row_sum_of<T>(n, [&](int i) { return a[i] * b[i]; });
}
// da += dvalue * b, db += dvalue * a; either may be null (no gradient wanted).
template <class T>
LF_HD void dot_vjp(const T* a, const T* b, T dvalue, T* da, T* db, int n) {
  for (int i = 0; i < n; ++i) {
    if (da) da[i] += dvalue * b[i];
    if (db) db[i] += dvalue * a[i];
  }
}

template <class T>
LF_HD void sum_vjp(T dvalue, T* dx, int n) {
  for (int i = 0; i < n; ++i) dx[i] += dvalue;
}

template <class T>
LF_HD T mean(const T* x, int n) { return sum(x, n) / T(n); }
template <class T>
LF_HD void mean_vjp(T dvalue, T* dx, int n) {
  T share = dvalue / T(n);
  for (int i = 0; i < n; ++i) dx[i] += share;
}

// ---- boxes ------------------------------------------------------------------
// A box is x1, y1, x2, y2 (field index 0..3). The overlap and the enclosing box
// are built from min and max with the tie rules above, and their side lengths
// are clamped with max(length, 0): a side of exactly 0 (boxes that touch)
// still passes gradient, like torch.clamp(min=0), while a negative side (boxes
// apart) passes none. area is not clamped: a flipped box has negative area.

// One side of the overlap or enclosing box: its clamped length and how much
// of each end's gradient goes to the first box (1, 0, or 1/2 at a tie).
template <class T>
struct Side {
  T length;    // max(hi - lo, 0)
  T lo_share;  // the first box's share of the low end
  T hi_share;  // the first box's share of the high end
  bool passes; // hi - lo went through the clamp (>= 0): the length moves with the ends
};

template <class T>
LF_HD Side<T> make_side(T lo, T hi, T lo_share, T hi_share) {
  T length = hi - lo;
  bool passes = max_picks_a(length, T(0));
  return {passes ? length : T(0), lo_share, hi_share, passes};
}

// Overlap along one axis: from the larger low end to the smaller high end.
template <class T>
LF_HD Side<T> overlap_side(T p_lo, T p_hi, T g_lo, T g_hi) {
  return make_side(max(p_lo, g_lo), min(p_hi, g_hi), max_share_a(p_lo, g_lo), min_share_a(p_hi, g_hi));
}

// Enclosing extent along one axis: from the smaller low end to the larger high end.
template <class T>
LF_HD Side<T> enclosing_side(T p_lo, T p_hi, T g_lo, T g_hi) {
  return make_side(min(p_lo, g_lo), max(p_hi, g_hi), min_share_a(p_lo, g_lo), max_share_a(p_hi, g_hi));
}

// Adds dlength * d(length)/d(coordinate) to the coordinates the side came from.
// axis 0 is x (coordinates 0 and 2), axis 1 is y (1 and 3).
template <class T>
LF_HD void side_vjp(const Side<T>& side, T dlength, int axis, T* dp, T* dg) {
  if (!side.passes) return;
  if (dp) {
    dp[axis + 2] += dlength * side.hi_share;
    dp[axis] -= dlength * side.lo_share;
  }
  if (dg) {
    dg[axis + 2] += dlength * (T(1) - side.hi_share);
    dg[axis] -= dlength * (T(1) - side.lo_share);
  }
}

template <class T>
LF_HD T area(const T* p) { return (p[2] - p[0]) * (p[3] - p[1]); }
template <class T>
LF_HD void area_vjp(const T* p, T dvalue, T* dp) {
  if (!dp) return;
  T w = p[2] - p[0];
  T h = p[3] - p[1];
  dp[0] -= dvalue * h;
  dp[2] += dvalue * h;
  dp[1] -= dvalue * w;
  dp[3] += dvalue * w;
}

template <class T>
LF_HD T inter(const T* p, const T* g) {
  return overlap_side(p[0], p[2], g[0], g[2]).length * overlap_side(p[1], p[3], g[1], g[3]).length;
}
template <class T>
LF_HD void inter_vjp(const T* p, const T* g, T dvalue, T* dp, T* dg) {
  Side<T> x = overlap_side(p[0], p[2], g[0], g[2]);
  Side<T> y = overlap_side(p[1], p[3], g[1], g[3]);
  side_vjp(x, dvalue * y.length, 0, dp, dg);
  side_vjp(y, dvalue * x.length, 1, dp, dg);
}

template <class T>
LF_HD T enclose(const T* p, const T* g) {
  return enclosing_side(p[0], p[2], g[0], g[2]).length * enclosing_side(p[1], p[3], g[1], g[3]).length;
}
template <class T>
LF_HD void enclose_vjp(const T* p, const T* g, T dvalue, T* dp, T* dg) {
  Side<T> x = enclosing_side(p[0], p[2], g[0], g[2]);
  Side<T> y = enclosing_side(p[1], p[3], g[1], g[3]);
  side_vjp(x, dvalue * y.length, 0, dp, dg);
  side_vjp(y, dvalue * x.length, 1, dp, dg);
}

// iou = i / u with u = area(p) + area(g) - i + 1e-7 (a plain division: u > 0
// for proper boxes). With q = i / u: d/di = (1 + q) / u (i is also in u),
// d/d area = -q / u.
template <class T>
LF_HD T iou_union(const T* p, const T* g, T i) { return area(p) + area(g) - i + T(kBoxEps); }
template <class T>
LF_HD T iou(const T* p, const T* g) {
  T i = inter(p, g);
  return i / iou_union(p, g, i);
}
template <class T>
LF_HD void iou_vjp(const T* p, const T* g, T dvalue, T* dp, T* dg) {
  T i = inter(p, g);
  T u = iou_union(p, g, i);
  T q = i / u;
  inter_vjp(p, g, dvalue * (T(1) + q) / u, dp, dg);
  T darea = -dvalue * q / u;
  area_vjp(p, darea, dp);
  area_vjp(g, darea, dg);
}

}  // namespace lossforge::sem
