#include "search/generate.hpp"

#include <algorithm>
#include <cmath>

namespace lossforge {
namespace {

class Generator {
 public:
  Generator(const Preset& preset, Rng& rng, const GenerateOptions& options, GrowMethod method)
      : rng_(rng), options_(options), method_(method) {
    for (const NamedExpr& t : preset.terminals) {
      bool wanted = options.all_terminals ||
                    std::find(preset.search_terminals.begin(), preset.search_terminals.end(), t.name) !=
                        preset.search_terminals.end();
      if (!wanted) continue;
      const Type& type = t.expr->type();
      if (type.is_box()) boxes_.push_back(t.expr);
      else if (type.is_vec()) rows_.push_back(t.expr);
      else reals_.push_back(t.expr);
    }
    if (!rows_.empty()) row_type_ = rows_.front()->type();
    for (const OpInfo& info : all_ops()) {
      if (info.kind == OpKind::Leaf || info.op == Op::Field) continue;
      if (!info.paper_set && !options.extra_ops) continue;
      if (info.kind == OpKind::Box && boxes_.empty()) continue;
      ops_.push_back(info.op);
    }
  }

  Expr real(int depth) { return grow(depth, Type::real()); }
  Expr of_type(int depth, const Type& want) { return grow(depth, want.is_vec() ? row_type_ : Type::real()); }

 private:
  Expr grow(int depth, const Type& want) {
    bool leaf = depth <= 1 || (method_ == GrowMethod::Grow && chance(options_.leaf_rate));
    if (!leaf)
      for (int attempt = 0; attempt < 8; ++attempt)
        if (Expr e = operation(depth, want)) return e;
    return terminal(want);
  }

  Expr terminal(const Type& want) {
    if (want.is_vec()) return pick(rows_);
    if (reals_.empty() || chance(0.25)) return number();
    return pick(reals_);
  }

  Expr number() {
    if (chance(options_.random_constant_rate)) {
      // Values of every magnitude and sign, to exercise number printing.
      std::uniform_real_distribution<double> mantissa(-10, 10);
      std::uniform_int_distribution<int> exponent(-30, 30);
      return constant(mantissa(rng_) * std::pow(10.0, exponent(rng_)));
    }
    return constant(options_.constants[index(options_.constants.size())]);
  }

  // An operator whose result has type `want`, or {} when the draw does not fit.
  Expr operation(int depth, const Type& want) {
    Op op = ops_[index(ops_.size())];
    const OpInfo& info = op_info(op);
    switch (info.kind) {
      case OpKind::Elementwise: {
        std::vector<Expr> args;
        // For a row result, at least one argument is a row; the others may broadcast.
        size_t row_arg = want.is_vec() ? index(info.arity) : info.arity;
        for (int i = 0; i < info.arity; ++i) {
          bool row = want.is_vec() && (size_t(i) == row_arg || chance(0.5));
          args.push_back(grow(depth - 1, row ? want : Type::real()));
        }
        return make(op, args);
      }
      case OpKind::Rowwise: {
        if (rows_.empty()) return {};
        bool keeps_row = op == Op::Softmax || op == Op::LogSoftmax;
        if (keeps_row != want.is_vec()) return {};
        std::vector<Expr> args;
        for (int i = 0; i < info.arity; ++i) args.push_back(grow(depth - 1, row_type_));
        return make(op, args);
      }
      case OpKind::Box: {
        if (want.is_vec()) return {};
        std::vector<Expr> args;
        for (int i = 0; i < info.arity; ++i) args.push_back(pick(boxes_));
        return make(op, args);
      }
      case OpKind::Leaf: break;
    }
    return {};
  }

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t index(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  Expr pick(const std::vector<Expr>& from) { return from[index(from.size())]; }

  Rng& rng_;
  const GenerateOptions& options_;
  GrowMethod method_;
  std::vector<Expr> reals_, rows_, boxes_;
  Type row_type_ = Type::real();
  std::vector<Op> ops_;
};

}  // namespace

Expr random_expr(const Preset& preset, Rng& rng, const GenerateOptions& options, GrowMethod method) {
  return Generator(preset, rng, options, method).real(options.max_depth);
}

Expr random_subtree(const Preset& preset, Rng& rng, const GenerateOptions& options, GrowMethod method, const Type& want) {
  return Generator(preset, rng, options, method).of_type(options.max_depth, want);
}

std::vector<Expr> ramped_half_and_half(const Preset& preset, Rng& rng, const GenerateOptions& options, size_t count) {
  std::vector<Expr> out;
  for (size_t i = 0; i < count; ++i) {
    GenerateOptions at_depth = options;
    at_depth.max_depth = 2 + static_cast<int>(i / 2) % std::max(1, options.max_depth - 1);
    out.push_back(random_expr(preset, rng, at_depth, i % 2 ? GrowMethod::Full : GrowMethod::Grow));
  }
  return out;
}

}  // namespace lossforge
