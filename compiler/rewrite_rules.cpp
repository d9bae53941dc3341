// The rewrite rules of the simplifier, one table. Each rule holds in exact
// arithmetic; `exactness` says what happens in floating point under the
// protected semantics of SPEC §3 (compiler/semantics.hpp), and `why` says where
// the result may differ and why the side condition makes it safe.
//
// Identities of + and * (x + 0, x * 1, x * 0, x - x, -(-x), constant folding,
// ordering) are not in this table: the engine keeps sums and products as
// multisets (compiler/simplify.cpp), which covers them inside chains of any
// length, where binary patterns could not.
//
// Refused on purpose (not rewritten at all):
//   x / x -> 1 near 0           x / (x + 1e-20) is 0 at x = 0, 1/2 at x = 1e-20
//   0 * x, x - x for unbounded x 0 * inf and inf - inf are NaN; so is NaN * 0
//   log(exp(x)) -> x            below x = -46 the 1e-20 dominates; above 88 the clamp does
//   sqrt(x)^2, sqrt(x * x)      sqrt of a negative is NaN; |x| changes the slope at 0
//   sigmoid(-x) = 1 - sigmoid(x) true, but 1 - sigmoid(x) rounds to 0 for x > 37
#include "compiler/rewrite_rules.hpp"

#include <charconv>
#include <stdexcept>

namespace lossforge {
namespace {

using Condition = std::function<bool(const Bindings&, RangeAnalysis&)>;

const ValueRange& range_of(const Bindings& b, RangeAnalysis& ranges, std::string_view var) {
  return ranges(b.find(var)->second);
}

// Side conditions, named for what they require of a bound variable.
Condition finite(std::string_view v) {
  return [v](const Bindings& b, RangeAnalysis& r) { return range_of(b, r, v).finite(); };
}
Condition at_most(std::string_view v, double hi) {
  return [v, hi](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return !x.may_be_nan && x.hi <= hi;
  };
}
Condition within(std::string_view v, double lo, double hi) {
  return [v, lo, hi](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return !x.may_be_nan && x.lo >= lo && x.hi <= hi;
  };
}
Condition positive(std::string_view v) {
  return [v](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return !x.may_be_nan && x.lo > 0;
  };
}
Condition negative(std::string_view v) {
  return [v](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return !x.may_be_nan && x.hi < 0;
  };
}
// |x| >= m everywhere, x finite.
Condition away_from_zero(std::string_view v, double m) {
  return [v, m](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return x.finite_with_slopes() && (x.lo >= m || x.hi <= -m);
  };
}
// x + 1e-20 != 0 everywhere, x finite.
Condition safe_divisor(std::string_view v) {
  return [v](const Bindings& b, RangeAnalysis& r) {
    const ValueRange& x = range_of(b, r, v);
    return x.finite_with_slopes() && (x.lo >= 0 || x.hi < -2e-20);
  };
}
// ?c is a constant and ?x lies strictly below (above) it.
Condition below_constant(std::string_view v, std::string_view c) {
  return [v, c](const Bindings& b, RangeAnalysis& r) {
    const Expr& k = b.find(c)->second;
    const ValueRange& x = range_of(b, r, v);
    return k->is_const() && !x.may_be_nan && x.hi < k->value();
  };
}
Condition above_constant(std::string_view v, std::string_view c) {
  return [v, c](const Bindings& b, RangeAnalysis& r) {
    const Expr& k = b.find(c)->second;
    const ValueRange& x = range_of(b, r, v);
    return k->is_const() && !x.may_be_nan && x.lo > k->value();
  };
}

using E = Exactness;

// clang-format off
const std::vector<RewriteRule>& rule_table() {
  static const std::vector<RewriteRule> rules = {
  // name                     pattern                          replacement                    condition
  // ---- numerically stable forms ----------------------------------------------------------------------
  {"log-softmax",             "(log (softmax ?x))",            "(log_softmax ?x)",            {},
   E::Protection, "differs only where a softmax entry is below ~1e-12, where ln(s + 1e-20) saturates at -46"},
  {"log-sigmoid",             "(log (sigmoid ?x))",            "(neg (softplus (neg ?x)))",   {},
   E::Protection, "differs only where sigmoid(x) < ~1e-12 (x < -27.6), where ln(s + 1e-20) saturates"},
  {"log-one-minus-sigmoid",   "(log (sub 1 (sigmoid ?x)))",    "(neg (softplus ?x))",         {},
   E::Protection, "differs only where 1 - sigmoid(x) < ~1e-12 (x > 27.6); 1 - s rounds to 0 from x = 37"},
  {"exp-minus-softplus",      "(exp (neg (softplus ?x)))",     "(sigmoid (neg ?x))",          {},
   E::Rounding,   "e^-softplus(x) = 1 / (1 + e^x); -softplus <= 0, so exp's clamp never applies (undoes log-sigmoid)"},
  {"exp-log-softmax",         "(exp (log_softmax ?x))",        "(softmax ?x)",                {},
   E::Rounding,   "log_softmax <= 0, so exp's clamp at 88 never applies"},
  // ---- exp and log ----------------------------------------------------------------------------------
  {"exp-log",                 "(exp (log ?x))",                "?x",                          within("x", 0, 1e38),
   E::Protection, "exp(ln(x + 1e-20)) = x + 1e-20 for 0 <= x < e^88; slope 1 either way"},
  {"log-exp-bounded",         "(log (exp ?x))",                "?x",                          within("x", -20, 87),
   E::Protection, "ln(e^x + 1e-20) = x within 5e-12 for -20 <= x <= 87 (exp's clamp is at 88)"},
  {"log-exp",                 "(log (exp ?x))",                "(min ?x 88)",                 {},
   E::Protection, "the clamp is kept; differs where e^x < ~1e-8 (x < -18), where ln(e^x + 1e-20) saturates at -46"},
  // ---- division -------------------------------------------------------------------------------------
  {"div-one",                 "(div ?x 1)",                    "?x",                          {},
   E::Exact,      "1 + 1e-20 rounds to 1"},
  {"div-minus-one",           "(div ?x -1)",                   "(neg ?x)",                    {},
   E::Exact,      "-1 + 1e-20 rounds to -1"},
  {"div-self",                "(div ?x ?x)",                   "1",                           away_from_zero("x", 1e-7),
   E::Protection, "x / (x + 1e-20) = 1 - 1e-20/x: within 1e-13 for |x| >= 1e-7, slope 1e-20/x^2 instead of 0"},
  {"zero-div",                "(div 0 ?x)",                    "0",                           safe_divisor("x"),
   E::Exact,      "0 / (x + 1e-20) is 0 unless x + 1e-20 is 0 or x is NaN"},
  // ---- powers ---------------------------------------------------------------------------------------
  {"pow-one",                 "(pow ?x 1)",                    "?x",                          {},
   E::Exact,      "pow(x, 1) = x; slope 1"},
  {"pow-zero",                "(pow ?x 0)",                    "1",                           {},
   E::Exact,      "pow(x, 0) = 1 even for NaN; slope 0 by convention"},
  // ---- abs, relu, min, max --------------------------------------------------------------------------
  {"abs-abs",                 "(abs (abs ?x))",                "(abs ?x)",                    {},
   E::Exact,      "idempotent; slope sign(x) either way (0 at 0)"},
  {"abs-neg",                 "(abs (neg ?x))",                "(abs ?x)",                    {},
   E::Exact,      "even; slope sign(x) either way"},
  {"abs-positive",            "(abs ?x)",                      "?x",                          positive("x"),
   E::Exact,      "x > 0 everywhere (abs'(0) = 0 would differ, so 0 is excluded)"},
  {"abs-negative",            "(abs ?x)",                      "(neg ?x)",                    negative("x"),
   E::Exact,      "x < 0 everywhere"},
  {"relu-relu",               "(relu (relu ?x))",              "(relu ?x)",                   {},
   E::Exact,      "idempotent; relu'(0) = 0 keeps the slopes equal"},
  {"relu-positive",           "(relu ?x)",                     "?x",                          positive("x"),
   E::Exact,      "x > 0 everywhere"},
  {"relu-nonpositive",        "(relu ?x)",                     "0",                           at_most("x", 0),
   E::Exact,      "x <= 0 and not NaN: value 0 and slope 0"},
  {"min-self",                "(min ?x ?x)",                   "?x",                          {},
   E::Exact,      "a tie: value x, slopes 1/2 + 1/2"},
  {"max-self",                "(max ?x ?x)",                   "?x",                          {},
   E::Exact,      "a tie: value x, slopes 1/2 + 1/2"},
  {"min-below-constant",      "(min ?x ?c)",                   "?x",                          below_constant("x", "c"),
   E::Exact,      "x < c everywhere (strictly: a tie would halve the slope)"},
  {"max-above-constant",      "(max ?x ?c)",                   "?x",                          above_constant("x", "c"),
   E::Exact,      "x > c everywhere"},
  // ---- row-wise -------------------------------------------------------------------------------------
  {"sum-softmax",             "(sum (softmax ?x))",            "1",                           finite("x"),
   E::Rounding,   "a softmax row of finite values sums to 1 up to rounding (NaN or inf would make it NaN); slope 0 up to rounding"},
  };
  return rules;
}
// clang-format on

// ---- the pattern language ------------------------------------------------------
class PatternParser {
 public:
  explicit PatternParser(std::string_view text) : text_(text) {}

  Pattern parse() {
    Pattern p = term();
    skip_space();
    if (pos_ != text_.size()) fail("trailing text");
    return p;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument("pattern \"" + std::string(text_) + "\": " + why);
  }
  void skip_space() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  std::string_view atom() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ' ' && text_[pos_] != '(' && text_[pos_] != ')') ++pos_;
    if (start == pos_) fail("expected a name, a number or ?var");
    return text_.substr(start, pos_ - start);
  }
  Pattern term() {
    skip_space();
    Pattern p;
    if (pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      const std::string_view name = atom();
      const auto op = find_function(name);
      if (!op) fail("unknown operator " + std::string(name));
      p.kind = Pattern::Kind::Apply;
      p.op = *op;
      for (skip_space(); pos_ < text_.size() && text_[pos_] != ')'; skip_space()) p.args.push_back(term());
      if (pos_ == text_.size()) fail("missing )");
      ++pos_;
      if (static_cast<int>(p.args.size()) != op_info(p.op).arity) fail("wrong arity for " + std::string(name));
      return p;
    }
    const std::string_view a = atom();
    if (a.front() == '?') {
      p.kind = Pattern::Kind::Var;
      p.var = std::string(a.substr(1));
      return p;
    }
    p.kind = Pattern::Kind::Number;
    auto [end, error] = std::from_chars(a.data(), a.data() + a.size(), p.number);
    if (error != std::errc() || end != a.data() + a.size()) fail("bad number " + std::string(a));
    return p;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Pattern parse_pattern(std::string_view text) { return PatternParser(text).parse(); }

std::span<const RewriteRule> rewrite_rules() { return rule_table(); }

bool match(const Pattern& pattern, const Expr& e, Bindings& bindings, const std::function<bool(const Node*)>& opaque) {
  switch (pattern.kind) {
    case Pattern::Kind::Var: {
      auto [it, inserted] = bindings.try_emplace(pattern.var, e);
      return inserted || it->second == e;
    }
    case Pattern::Kind::Number: return e->is_const(pattern.number);
    case Pattern::Kind::Apply:
      if (e->op() != pattern.op || e->args().size() != pattern.args.size()) return false;
      if (opaque && opaque(e.get())) return false;
      for (size_t i = 0; i < pattern.args.size(); ++i)
        if (!match(pattern.args[i], e->arg(i), bindings, opaque)) return false;
      return true;
  }
  return false;
}

Expr instantiate(const Pattern& pattern, const Bindings& bindings) {
  switch (pattern.kind) {
    case Pattern::Kind::Var: {
      auto it = bindings.find(pattern.var);
      if (it == bindings.end()) throw std::invalid_argument("unbound pattern variable ?" + pattern.var);
      return it->second;
    }
    case Pattern::Kind::Number: return constant(pattern.number);
    case Pattern::Kind::Apply: {
      std::vector<Expr> args;
      for (const Pattern& a : pattern.args) args.push_back(instantiate(a, bindings));
      return make(pattern.op, args);
    }
  }
  return {};
}

}  // namespace lossforge
