// Symbolic reverse mode: the interpreter's tape (runtime/interpreter.cpp),
// written out as IR instead of executed.
//
// The sweep visits topological_order(body) backwards, as the tape does, and
// gives each node that depends on a pred input (activity analysis) an adjoint
// Expr: the sum of g * (local partial) over its users, added in the tape's
// order. Each partial is built to compute exactly what the matching function of
// compiler/semantics.hpp computes, kinks and NaN included, so the gradient
// expressions evaluate to the tape's numbers; where the DSL cannot spell the
// tape's arithmetic the difference is rounding only, noted at the rule (salf,
// sgdf, pow's exponent, iou's divisions, and a real operand broadcast over a
// row whose adjoint already held a value: its row sum is added as one term).
//
// Builders fold only what is exact in both float and double (x * 1, x + 0,
// --x, constant arithmetic that rounds the same way); real simplification is
// the simplifier's job.
#include "compiler/autodiff.hpp"

#include <array>
#include <cmath>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "compiler/semantics.hpp"

namespace lossforge {
namespace {

// ---- builders that skip trivial nodes ------------------------------------------

bool is_const(const Expr& e, double v) { return e->is_const(v); }

// Constant arithmetic is folded only when float and double agree on the result,
// so a gradient evaluates the same folded or not, in either precision.
template <class F>
Expr fold_or_make(Op op, const Expr& a, const Expr& b, F apply) {
  if (a->is_const() && b->is_const()) {
    const double wide = apply(a->value(), b->value());
    const float narrow = apply(float(a->value()), float(b->value()));
    if (std::isfinite(wide) && float(wide) == narrow && double(float(a->value())) == a->value() &&
        double(float(b->value())) == b->value())
      return constant(wide);
  }
  return make(op, {a, b});
}

Expr negate(const Expr& a) {
  if (a->op() == Op::Neg) return a->arg(0);
  if (a->is_const()) return constant(-a->value());
  return make(Op::Neg, {a});
}

Expr plus(const Expr& a, const Expr& b) {
  if (is_const(b, 0)) return a;
  if (is_const(a, 0)) return b;
  if (b->op() == Op::Neg) return fold_or_make(Op::Sub, a, b->arg(0), [](auto x, auto y) { return x - y; });
  return fold_or_make(Op::Add, a, b, [](auto x, auto y) { return x + y; });
}

Expr minus(const Expr& a, const Expr& b) {
  if (is_const(b, 0)) return a;
  if (is_const(a, 0)) return negate(b);
  return fold_or_make(Op::Sub, a, b, [](auto x, auto y) { return x - y; });
}

Expr times(const Expr& a, const Expr& b) {
  if (is_const(a, 1)) return b;
  if (is_const(b, 1)) return a;
  if (is_const(a, -1)) return negate(b);
  if (is_const(b, -1)) return negate(a);
  return fold_or_make(Op::Mul, a, b, [](auto x, auto y) { return x * y; });
}

Expr num(double v) { return constant(v); }
Expr call(Op op, std::initializer_list<Expr> args) { return make(op, args); }
Expr over(const Expr& a, const Expr& b) { return call(Op::Div, {a, b}); }  // protected: a / (b + 1e-20)
Expr where(const Expr& c, const Expr& a, const Expr& b) { return call(Op::Where, {c, a, b}); }
Expr min_share(const Expr& a, const Expr& b) { return call(Op::MinShare, {a, b}); }
Expr max_share(const Expr& a, const Expr& b) { return call(Op::MaxShare, {a, b}); }

// Σ of a row; a value that is the same in every column (real) is added once
// per column of `row_like`, as the tape does: v * row^0 is v in every column
// (pow(x, 0) is 1 even for NaN and inf).
Expr row_sum(const Expr& v, const Expr& row_like) {
  if (v->type().is_vec()) return call(Op::Sum, {v});
  return call(Op::Sum, {times(v, call(Op::Pow, {row_like, num(0)}))});
}

// Σ g·s over a row, the tape's dot product, for g a row or a real.
Expr row_dot(const Expr& g, const Expr& s) {
  if (g->type().is_vec()) return call(Op::Dot, {g, s});
  return call(Op::Sum, {times(g, s)});
}

// ---- box sides (semantics.hpp: Side, overlap_side, enclosing_side) -------------

struct Side {
  Expr length;    // max(hi - lo, 0)
  Expr passes;    // nonzero where hi - lo went through the clamp (>= 0 or NaN)
  Expr lo_share;  // the first box's share of the low end
  Expr hi_share;  // the first box's share of the high end
};

Side make_side(const Expr& lo, const Expr& hi, Expr lo_share, Expr hi_share) {
  Expr raw = minus(hi, lo);
  return {call(Op::Max, {raw, num(0)}), max_share(raw, num(0)), std::move(lo_share), std::move(hi_share)};
}

Side overlap_side(const Expr& p, const Expr& g, int axis) {
  Expr p_lo = field(p, axis), p_hi = field(p, axis + 2), g_lo = field(g, axis), g_hi = field(g, axis + 2);
  return make_side(call(Op::Max, {p_lo, g_lo}), call(Op::Min, {p_hi, g_hi}), max_share(p_lo, g_lo),
                   min_share(p_hi, g_hi));
}

Side enclosing_side(const Expr& p, const Expr& g, int axis) {
  Expr p_lo = field(p, axis), p_hi = field(p, axis + 2), g_lo = field(g, axis), g_hi = field(g, axis + 2);
  return make_side(call(Op::Min, {p_lo, g_lo}), call(Op::Max, {p_hi, g_hi}), min_share(p_lo, g_lo),
                   max_share(p_hi, g_hi));
}

// ---- the sweep ---------------------------------------------------------------------

class ReverseSweep {
 public:
  explicit ReverseSweep(const Loss& loss) : loss_(loss), order_(topological_order(loss.body)) {
    for (const Node* n : order_) {
      bool is_active = n->op() == Op::Input ? is_pred(*n) : false;
      for (const Expr& a : n->args()) is_active = is_active || active_.count(a.get());
      if (is_active) active_.insert(n);
    }
  }

  Gradients run() {
    if (active_.count(loss_.body.get())) adjoint_[loss_.body.get()] = num(1);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      const Node& n = **it;
      if (n.is_leaf() || !active_.count(&n)) continue;
      auto g = adjoint_.find(&n);
      if (g == adjoint_.end()) continue;  // reached only through flat ops (shares, where's condition)
      propagate(n, g->second);
    }
    return collect();
  }

 private:
  bool is_pred(const Node& input) const {
    const auto i = size_t(input.index());
    return i < loss_.inputs.size() && loss_.inputs[i].pred;
  }

  // Adds a contribution to argument `i`'s adjoint. A real argument of a row
  // result was broadcast: it gets the row sum of its contributions.
  void give(const Node& n, size_t i, Expr contribution) {
    const Node* target = n.arg(i).get();
    if (!active_.count(target)) return;
    if (target->type().is_real() && n.type().is_vec()) contribution = row_sum(contribution, Expr::share(&n));
    accumulate(adjoint_[target], std::move(contribution));
  }
  // g times a local partial, built only when the argument needs it.
  template <class Partial>
  void give_partial(const Node& n, size_t i, const Expr& g, Partial partial) {
    if (active_.count(n.arg(i).get())) give(n, i, times(g, partial()));
  }
  void give_box(const Node& n, size_t i, int coordinate, Expr contribution) {
    const Node* target = n.arg(i).get();
    if (active_.count(target)) accumulate(box_adjoint_[target][size_t(coordinate)], std::move(contribution));
  }
  static void accumulate(Expr& sum, Expr contribution) {
    sum = sum ? plus(sum, contribution) : std::move(contribution);
  }

  // side_vjp: dlength * d(length)/d(coordinate) to the four coordinates the side
  // came from; nothing where the length was clamped to 0.
  void side_vjp(const Node& n, const Side& side, const Expr& dlength, int axis) {
    Expr d = where(side.passes, dlength, num(0));
    give_box(n, 0, axis + 2, times(d, side.hi_share));
    give_box(n, 0, axis, negate(times(d, side.lo_share)));
    give_box(n, 1, axis + 2, times(d, minus(num(1), side.hi_share)));
    give_box(n, 1, axis, negate(times(d, minus(num(1), side.lo_share))));
  }
  void sides_vjp(const Node& n, const Side& x, const Side& y, const Expr& g) {
    side_vjp(n, x, times(g, y.length), 0);
    side_vjp(n, y, times(g, x.length), 1);
  }
  // area = (x2 - x1) * (y2 - y1) of argument i.
  void area_vjp(const Node& n, size_t i, const Expr& g) {
    if (!active_.count(n.arg(i).get())) return;
    const Expr& box = n.arg(i);
    Expr w = minus(field(box, 2), field(box, 0)), h = minus(field(box, 3), field(box, 1));
    give_box(n, i, 0, negate(times(g, h)));
    give_box(n, i, 2, times(g, h));
    give_box(n, i, 1, negate(times(g, w)));
    give_box(n, i, 3, times(g, w));
  }

  // One rule per operator: what n's adjoint g adds to each argument's adjoint.
  void propagate(const Node& n, const Expr& g) {
    const Expr self = Expr::share(&n);
    const Expr a = n.args().size() > 0 ? n.arg(0) : Expr();
    const Expr b = n.args().size() > 1 ? n.arg(1) : Expr();
    auto unary = [&](auto partial) { give_partial(n, 0, g, partial); };
    switch (n.op()) {
      case Op::Const:
      case Op::Input:
      case Op::Param: break;
      case Op::Add: give(n, 0, g); give(n, 1, g); break;
      case Op::Sub: give(n, 0, g); give(n, 1, negate(g)); break;
      case Op::Mul:
        give_partial(n, 0, g, [&] { return b; });
        give_partial(n, 1, g, [&] { return a; });
        break;
      // d/da = 1 / (b + eps); d/db = -(a / d) / d, with a / d the node itself.
      case Op::Div:
        give_partial(n, 0, g, [&] { return over(num(1), b); });
        give_partial(n, 1, g, [&] { return negate(over(self, b)); });
        break;
      case Op::Neg: give(n, 0, negate(g)); break;
      // d/da = b a^(b-1), 0 where b = 0 (also at a = 0, where it is 0 * inf);
      // d/db = a^b ln a, 0 where a = 0 <= b. The DSL's log adds 1e-20 to a: equal
      // to ln a up to rounding except for a below about 1e-4.
      case Op::Pow:
        if (!(b->is_const() && b->value() == 0))
          give_partial(n, 0, g, [&] {
            Expr slope = times(b, call(Op::Pow, {a, fold_or_make(Op::Sub, b, num(1), [](auto x, auto y) { return x - y; })}));
            return b->is_const() ? slope : where(b, slope, num(0));
          });
        give_partial(n, 1, g, [&] {
          Expr slope = times(self, call(Op::Log, {a}));
          // min_share(0, b) is nonzero exactly where 0 <= b (not for NaN).
          const bool nonzero_base = a->is_const() && a->value() != 0;
          return nonzero_base ? slope : where(a, slope, where(min_share(num(0), b), num(0), slope));
        });
        break;
      case Op::Log: unary([&] { return over(num(1), a); }); break;
      // Above the cap of 88 exp is flat; at 88 and below its slope is itself.
      case Op::Exp: unary([&] { return where(min_share(a, num(sem::kExpMax)), self, num(0)); }); break;
      // 0.5 / sqrt(a), with sqrt(a)^-1 = 1 / sqrt(a) (inf at 0, as the tape).
      case Op::Sqrt: unary([&] { return times(num(0.5), call(Op::Pow, {self, num(-1)})); }); break;
      // sign(a), 0 at 0 and for NaN: the shares of max(a, -a) in a and in -a.
      case Op::Abs: unary([&] { return minus(max_share(a, num(0)), max_share(negate(a), num(0))); }); break;
      case Op::Sin: unary([&] { return call(Op::Cos, {a}); }); break;
      case Op::Cos: give_partial(n, 0, g, [&] { return negate(call(Op::Sin, {a})); }); break;
      case Op::Tanh: unary([&] { return minus(num(1), times(self, self)); }); break;
      // 1 where a > 0: 0 where min(a, 0) picks a (a <= 0 or NaN).
      case Op::Relu: unary([&] { return where(min_share(a, num(0)), num(0), num(1)); }); break;
      case Op::Softplus: unary([&] { return call(Op::Sigmoid, {a}); }); break;
      case Op::Sigmoid: unary([&] { return times(self, minus(num(1), self)); }); break;
      // e^(-u²) / 4 with u = (√π/4) a.
      case Op::Serf: unary([&] {
        Expr u = times(num(sem::kSqrtPi / 4), a);
        return times(num(0.25), call(Op::Exp, {times(negate(u), u)}));
      }); break;
      // r³ / 4 with r = 1 / √(1 + (a/2)²); the tape takes √ as hypot: rounding differs.
      case Op::Salf: unary([&] {
        Expr u = over(a, num(2));
        Expr r = over(num(1), call(Op::Sqrt, {plus(num(1), times(u, u))}));
        return times(times(times(num(0.25), r), r), r);
      }); break;
      // (1/4) sech(x), x = πa/4, as 2e^-|x| / (1 + e^-2|x|): no cosh in the DSL,
      // and this form neither overflows nor cancels; rounding differs from cosh.
      case Op::Sgdf: unary([&] {
        Expr e = call(Op::Exp, {negate(call(Op::Abs, {over(times(num(sem::kPi), a), num(4))}))});
        return over(times(num(0.5), e), plus(num(1), times(e, e)));
      }); break;
      case Op::Erf: unary([&] { return times(num(2 / sem::kSqrtPi), call(Op::Exp, {times(negate(a), a)})); }); break;
      case Op::Erfc: unary([&] { return times(num(-2 / sem::kSqrtPi), call(Op::Exp, {times(negate(a), a)})); }); break;
      // Ties split the slope evenly (semantics.hpp, as torch.minimum / maximum).
      case Op::Min:
      case Op::Max: {
        Expr share = n.op() == Op::Min ? min_share(a, b) : max_share(a, b);
        give_partial(n, 0, g, [&] { return share; });
        give_partial(n, 1, g, [&] { return minus(num(1), share); });
        break;
      }
      // torch.clamp: a gets 1 on the closed interval, lo below it (unless lo > hi),
      // hi above it. "Picks" = the share is nonzero.
      case Op::Clamp: {
        const Expr& lo = b;
        const Expr& hi = n.arg(2);
        give_partial(n, 0, g, [&] { return where(max_share(a, lo), where(min_share(a, hi), num(1), num(0)), num(0)); });
        give_partial(n, 1, g, [&] { return where(max_share(a, lo), num(0), where(min_share(lo, hi), num(1), num(0))); });
        give_partial(n, 2, g, [&] { return where(min_share(call(Op::Max, {a, lo}), hi), num(0), num(1)); });
        break;
      }
      // The picked branch gets g itself; the condition nothing.
      case Op::Where:
        give(n, 1, where(a, g, num(0)));
        give(n, 2, where(a, num(0), g));
        break;
      case Op::MinShare:
      case Op::MaxShare: break;  // flat
      // s (g - Σ g·s), s the softmax row.
      case Op::Softmax: give(n, 0, times(self, minus(g, row_dot(g, self)))); break;
      // g - softmax(x) Σ g. softmax(x), not e^log_softmax(x): the LLVM code
      // generator makes it from the exponentials log_softmax(x) has made.
      case Op::LogSoftmax: give(n, 0, minus(g, times(call(Op::Softmax, {a}), row_sum(g, self)))); break;
      // g e^(x - logsumexp(x)) = g softmax(x).
      case Op::Logsumexp: give(n, 0, times(g, call(Op::Softmax, {a}))); break;
      case Op::Dot:
        give_partial(n, 0, g, [&] { return b; });
        give_partial(n, 1, g, [&] { return a; });
        break;
      case Op::Sum: give(n, 0, g); break;
      // g / C, with C = Σ a^0 (C + 1e-20 rounds to C).
      case Op::Mean: give(n, 0, over(g, row_sum(num(1), a))); break;
      case Op::Field: give_box(n, 0, n.index(), g); break;
      case Op::Area: area_vjp(n, 0, g); break;
      case Op::Inter: sides_vjp(n, overlap_side(a, b, 0), overlap_side(a, b, 1), g); break;
      case Op::Enclose: sides_vjp(n, enclosing_side(a, b, 0), enclosing_side(a, b, 1), g); break;
      // q = i / u, u = area(p) + area(g) - i + 1e-7: d/di = (1 + q) / u, d/d area = -q / u.
      // The tape divides by u plainly, the DSL by u + 1e-20: equal for u >= 1e-4.
      case Op::Iou: {
        Expr i = call(Op::Inter, {a, b});
        Expr u = plus(minus(plus(call(Op::Area, {a}), call(Op::Area, {b})), i), num(sem::kBoxEps));
        sides_vjp(n, overlap_side(a, b, 0), overlap_side(a, b, 1), over(times(g, plus(num(1), self)), u));
        Expr darea = over(times(negate(g), self), u);
        area_vjp(n, 0, darea);
        area_vjp(n, 1, darea);
        break;
      }
    }
  }

  Gradients collect() const {
    Gradients out;
    for (size_t k : loss_.pred_inputs()) {
      InputGradient grad{k, {}};
      const bool box = loss_.inputs[k].type.is_box();
      grad.parts.assign(box ? 4 : 1, Expr());
      for (const Node* n : order_) {
        if (n->op() != Op::Input || size_t(n->index()) != k) continue;
        if (box) {
          if (auto it = box_adjoint_.find(n); it != box_adjoint_.end())
            for (size_t c = 0; c < 4; ++c)
              if (it->second[c]) accumulate(grad.parts[c], it->second[c]);
        } else if (auto it = adjoint_.find(n); it != adjoint_.end()) {
          accumulate(grad.parts[0], it->second);
        }
      }
      for (Expr& part : grad.parts)
        if (!part) part = num(0);  // the input does not reach the loss
      out.inputs.push_back(std::move(grad));
    }
    return out;
  }

  const Loss& loss_;
  std::vector<const Node*> order_;
  std::unordered_set<const Node*> active_;
  std::unordered_map<const Node*, Expr> adjoint_;
  std::unordered_map<const Node*, std::array<Expr, 4>> box_adjoint_;
};

}  // namespace

Gradients differentiate(const Loss& loss) {
  if (!loss.body) throw std::invalid_argument("differentiate: loss '" + loss.name + "' has no body");
  return ReverseSweep(loss).run();
}

std::vector<Loss> gradient_losses(const Loss& loss, const Gradients& gradients) {
  std::unordered_set<std::string> taken;
  for (const LossInput& in : loss.inputs) taken.insert(in.name);
  for (const LossParam& p : loss.params) taken.insert(p.name);
  for (const NamedExpr& let : loss.lets) taken.insert(let.name);
  auto fresh = [&](const std::string& base) {
    std::string name = base;
    for (int k = 2; taken.count(name); ++k) name = base + std::to_string(k);
    return name;
  };
  std::vector<Loss> out;
  for (const InputGradient& grad : gradients.inputs) {
    const LossInput& in = loss.inputs.at(grad.input);
    for (size_t c = 0; c < grad.parts.size(); ++c) {
      Loss d = loss;
      d.name = "d_" + loss.name + "_d" + in.name;
      if (in.type.is_box()) d.name += "_" + std::string(box_field_name(int(c)));
      d.preset.clear();
      const Expr& part = grad.parts[c];
      if (!in.type.is_vec()) {
        d.body = part;
      } else {
        // Name the row so that it prints as a let, then reduce it against w.
        const std::string w_name = fresh("w");
        Expr w = input(int(d.inputs.size()), w_name, in.type);
        d.inputs.push_back({w_name, in.type, false});
        d.lets.push_back({fresh("d" + in.name), part});
        d.body = part->type().is_vec() ? make(Op::Dot, {w, part}) : make(Op::Sum, {make(Op::Mul, {w, part})});
      }
      out.push_back(std::move(d));
    }
  }
  return out;
}

}  // namespace lossforge
