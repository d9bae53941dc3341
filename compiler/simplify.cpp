#include "compiler/simplify.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "compiler/presets.hpp"
#include "compiler/rewrite_rules.hpp"
#include "compiler/value_range.hpp"

namespace lossforge {
namespace {

// Operators whose two arguments may be swapped without changing value or
// gradient (min/max: a tie's value is the same number, its slope is split evenly).
bool is_commutative(Op op) {
  switch (op) {
    case Op::Min: case Op::Max: case Op::Dot: case Op::Inter: case Op::Enclose: case Op::Iou: return true;
    default: return false;
  }
}

// Structural comparison for the rare equal hashes: deterministic, no addresses.
int compare_structure(const Node* a, const Node* b) {
  if (a == b) return 0;
  if (a->op() != b->op()) return a->op() < b->op() ? -1 : 1;
  if (a->value() != b->value()) return a->value() < b->value() ? -1 : 1;
  if (a->index() != b->index()) return a->index() < b->index() ? -1 : 1;
  if (a->name() != b->name()) return a->name() < b->name() ? -1 : 1;
  if (a->type().str() != b->type().str()) return a->type().str() < b->type().str() ? -1 : 1;
  if (a->args().size() != b->args().size()) return a->args().size() < b->args().size() ? -1 : 1;
  for (size_t i = 0; i < a->args().size(); ++i)
    if (int c = compare_structure(a->arg(i).get(), b->arg(i).get())) return c;
  return 0;
}

// The compiled rule table, indexed by the operator at the pattern's root.
struct CompiledRule {
  const RewriteRule* rule;
  Pattern pattern;
  Pattern replacement;
};
const std::array<std::vector<CompiledRule>, kOpCount>& rules_by_root() {
  static const auto* table = [] {
    auto* t = new std::array<std::vector<CompiledRule>, kOpCount>;
    for (const RewriteRule& r : rewrite_rules()) {
      CompiledRule c{&r, parse_pattern(r.pattern), parse_pattern(r.replacement)};
      if (c.pattern.kind != Pattern::Kind::Apply) throw std::logic_error("rule " + std::string(r.name) + ": pattern must be an operator");
      (*t)[static_cast<int>(c.pattern.op)].push_back(std::move(c));
    }
    return t;
  }();
  return *table;
}

class Simplifier {
 public:
  explicit Simplifier(const SimplifyOptions& options) : options_(options) {}

  SimplifyReport run(const Expr& root) {
    SimplifyReport report;
    report.result = root;
    while (report.iterations < options_.max_iterations) {
      ++report.iterations;
      memo_.clear();
      keep_.clear();
      Expr next = normal(report.result);
      if (next == report.result) {
        report.fixpoint = true;
        break;
      }
      if (dag_size(next) > options_.max_nodes) break;  // a bound: keep the last result
      report.result = next;
    }
    report.rule_applications = rule_applications_;
    return report;
  }

 private:
  bool opaque(const Node* n) const { return options_.opaque.count(n) != 0; }

  // Every node of e normalised, children first; memoised within a pass.
  Expr normal(const Expr& e) {
    if (auto it = memo_.find(e.get()); it != memo_.end()) return it->second;
    for (const Node* n : topological_order(e)) {
      if (memo_.count(n)) continue;
      Expr out;
      if (opaque(n)) {
        out = Expr::share(n);
      } else {
        std::array<Expr, 3> args;
        bool changed = false;
        for (size_t i = 0; i < n->args().size(); ++i) {
          args[i] = memo_.at(n->arg(i).get());
          changed |= args[i] != n->arg(i);
        }
        out = !changed ? Expr::share(n) : rebuilt(*n, std::span<const Expr>(args.data(), n->args().size()));
        out = at_top(out);
      }
      remember(n, out);
      remember(out.get(), out);  // a normal node is its own normal form within this pass
    }
    return memo_.at(e.get());
  }

  void remember(const Node* n, const Expr& out) {
    if (memo_.emplace(n, out).second) keep_.push_back(Expr::share(n));
  }

  static Expr rebuilt(const Node& n, std::span<const Expr> args) {
    return n.op() == Op::Field ? field(args[0], n.index()) : make(n.op(), args);
  }

  // Rewrites the root of e, whose arguments are normal, until nothing applies.
  Expr at_top(Expr e) {
    for (int step = 0; step < options_.max_rule_steps_per_node; ++step) {
      if (e->is_leaf() || opaque(e.get())) return e;
      Expr next = fold(e);
      if (!next) next = canonical_arithmetic(e);
      if (!next) next = sort_commutative(e);
      if (next && next != e) {
        e = next;
        continue;
      }
      Expr replaced = apply_rules(e);
      if (!replaced) return e;
      ++rule_applications_;
      // The replacement's new nodes are not normal yet; its bound parts are.
      if (depth_ >= kMaxRecursion) return replaced;
      ++depth_;
      e = normal(replaced);
      --depth_;
      return e;
    }
    return e;
  }

  // ---- 1. constant folding ----------------------------------------------------
  static Expr fold(const Expr& e) {
    std::array<double, 3> values{};
    for (size_t i = 0; i < e->args().size(); ++i) {
      if (!e->arg(i)->is_const()) return {};
      values[i] = e->arg(i)->value();
    }
    const auto value = evaluate_scalar(e->op(), std::span<const double>(values.data(), e->args().size()));
    if (!value || !std::isfinite(*value) || !e->type().is_real()) return {};  // IR constants are finite
    return constant(*value);
  }

  // ---- 2. sums and products as multisets ----------------------------------------
  Expr canonical_arithmetic(const Expr& e) {
    Expr out;
    switch (e->op()) {
      case Op::Add: case Op::Sub: case Op::Neg: out = canonical_sum(e); break;
      case Op::Mul: out = canonical_product(e); break;
      default: return {};
    }
    // A result of another type (x - x -> 0 for a row x) would break its users.
    if (!out || !(out->type() == e->type())) return {};
    return out;
  }

  // A product: sign * constant * factors.
  struct Product {
    bool negative = false;
    double constant = 1;
    std::vector<Expr> factors;
  };
  void collect_factors(const Expr& e, Product& p, bool top) {
    if (!top && opaque(e.get())) {
      p.factors.push_back(e);
      return;
    }
    switch (e->op()) {
      case Op::Mul: collect_factors(e->arg(0), p, false); collect_factors(e->arg(1), p, false); return;
      case Op::Neg: p.negative = !p.negative; collect_factors(e->arg(0), p, false); return;
      case Op::Const: p.constant *= e->value(); return;
      default: p.factors.push_back(e);
    }
  }
  Expr canonical_product(const Expr& e) {
    Product p;
    collect_factors(e, p, true);
    if (!std::isfinite(p.constant)) return {};
    std::sort(p.factors.begin(), p.factors.end(), [](const Expr& a, const Expr& b) { return canonical_less(a.get(), b.get()); });
    if (p.constant == 0) {
      bool all_finite = true;
      for (const Expr& f : p.factors) all_finite = all_finite && ranges_(f).finite_with_slopes();
      if (all_finite) return constant(0);
    }
    if (p.constant < 0) {
      p.negative = !p.negative;
      p.constant = -p.constant;
    }
    Expr chain = p.factors.empty() ? Expr{} : p.factors.front();
    for (size_t i = 1; i < p.factors.size(); ++i) chain = make(Op::Mul, {chain, p.factors[i]});
    if (!chain) return constant(p.negative ? -p.constant : p.constant);
    if (p.constant != 1) chain = make(Op::Mul, {chain, constant(p.constant)});
    return p.negative ? make(Op::Neg, {chain}) : chain;
  }

  // A sum: terms with coefficients (x * 2 is the term x with coefficient 2) and a constant.
  struct Term {
    Expr rest;
    double positive = 0;  // sum of the positive coefficients
    double negative = 0;  // sum of the negative ones
  };
  struct Sum {
    double constant = 0;
    std::vector<Term> terms;
    std::unordered_map<const Node*, size_t> index;
  };
  void collect_terms(const Expr& e, double sign, Sum& s, bool top) {
    if (top || !opaque(e.get())) {
      switch (e->op()) {
        case Op::Add: collect_terms(e->arg(0), sign, s, false); collect_terms(e->arg(1), sign, s, false); return;
        case Op::Sub: collect_terms(e->arg(0), sign, s, false); collect_terms(e->arg(1), -sign, s, false); return;
        case Op::Neg: collect_terms(e->arg(0), -sign, s, false); return;
        case Op::Const: s.constant += sign * e->value(); return;
        default: break;
      }
    }
    Expr rest = e;
    double coefficient = sign;
    // The canonical product puts its positive constant last: x * y * 2.
    if (e->op() == Op::Mul && e->arg(1)->is_const() && !opaque(e.get())) {
      rest = e->arg(0);
      coefficient *= e->arg(1)->value();
    }
    auto [it, inserted] = s.index.emplace(rest.get(), s.terms.size());
    if (inserted) s.terms.push_back({rest});
    Term& t = s.terms[it->second];
    (coefficient > 0 ? t.positive : t.negative) += coefficient;
  }
  Expr canonical_sum(const Expr& e) {
    Sum s;
    collect_terms(e, 1, s, true);
    if (!std::isfinite(s.constant)) return {};
    std::vector<Expr> plus, minus;  // terms added, terms subtracted (as positive expressions)
    auto emit = [&](const Expr& rest, double coefficient) {
      if (coefficient == 0) return;
      const double magnitude = std::fabs(coefficient);
      Expr term = magnitude == 1 ? rest : make(Op::Mul, {rest, constant(magnitude)});
      (coefficient > 0 ? plus : minus).push_back(term);
    };
    for (const Term& t : s.terms) {
      if (!std::isfinite(t.positive) || !std::isfinite(t.negative)) return {};
      // x * 3 - x = x * 2 only where x is finite: inf * 3 - inf is NaN.
      if (t.positive == 0 || t.negative == 0 || ranges_(t.rest).finite_with_slopes()) {
        emit(t.rest, t.positive + t.negative);
      } else {
        emit(t.rest, t.positive);
        emit(t.rest, t.negative);
      }
    }
    auto order = [](const Expr& a, const Expr& b) { return canonical_less(a.get(), b.get()); };
    std::sort(plus.begin(), plus.end(), order);
    std::sort(minus.begin(), minus.end(), order);
    if (s.constant > 0) plus.push_back(constant(s.constant));
    if (s.constant < 0) minus.push_back(constant(-s.constant));
    if (plus.empty() && minus.empty()) return constant(0);
    Expr chain = plus.empty() ? make(Op::Neg, {minus.front()}) : plus.front();
    for (size_t i = 1; i < plus.size(); ++i) chain = make(Op::Add, {chain, plus[i]});
    for (size_t i = plus.empty() ? 1 : 0; i < minus.size(); ++i) chain = make(Op::Sub, {chain, minus[i]});
    return chain;
  }

  // ---- 3. commutative operators -------------------------------------------------
  static Expr sort_commutative(const Expr& e) {
    if (!is_commutative(e->op()) || !canonical_less(e->arg(1).get(), e->arg(0).get())) return {};
    return make(e->op(), {e->arg(1), e->arg(0)});
  }

  // ---- 4. the rule table ----------------------------------------------------------
  Expr apply_rules(const Expr& e) {
    auto is_opaque = [this](const Node* n) { return opaque(n); };
    for (const CompiledRule& r : rules_by_root()[static_cast<int>(e->op())]) {
      Bindings bindings;
      if (!match(r.pattern, e, bindings, is_opaque)) continue;
      if (r.rule->condition && !r.rule->condition(bindings, ranges_)) continue;
      Expr out;
      try {
        out = instantiate(r.replacement, bindings);
      } catch (const std::invalid_argument&) {
        continue;  // the replacement does not type-check here (a row where a real is needed)
      }
      if (out->type() == e->type() && out != e) return out;
    }
    return {};
  }

  static constexpr int kMaxRecursion = 64;
  const SimplifyOptions& options_;
  RangeAnalysis ranges_;
  std::unordered_map<const Node*, Expr> memo_;
  std::vector<Expr> keep_;  // keeps memo keys alive so that their addresses are not reused
  size_t rule_applications_ = 0;
  int depth_ = 0;
};

}  // namespace

bool canonical_less(const Node* a, const Node* b) {
  if (a == b) return false;
  if (a->is_const() != b->is_const()) return b->is_const();
  if (a->is_const()) return a->value() < b->value();
  if (a->depth() != b->depth()) return a->depth() < b->depth();
  if (a->hash() != b->hash()) return a->hash() < b->hash();
  return compare_structure(a, b) < 0;
}

SimplifyReport simplify_with_report(const Expr& e, const SimplifyOptions& options) {
  if (!e) return {};
  return Simplifier(options).run(e);
}

Expr simplify(const Expr& e, const SimplifyOptions& options) { return simplify_with_report(e, options).result; }

Loss simplify(const Loss& loss, const SimplifyOptions& options) {
  SimplifyOptions with_names = options;
  if (const Preset* preset = loss.preset.empty() ? nullptr : find_preset(loss.preset))
    for (const NamedExpr& t : preset->terminals)
      if (t.expr->op() != Op::Input) with_names.opaque.insert(t.expr.get());
  Loss out = loss;
  out.body = simplify(loss.body, with_names);
  for (NamedExpr& let : out.lets)
    if (!with_names.opaque.count(let.expr.get())) let.expr = simplify(let.expr, with_names);
  return out;
}

}  // namespace lossforge
