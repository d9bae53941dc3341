#include "compiler/lower.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"

namespace lossforge {
namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::optional<Op> binary_op(std::string_view symbol) {
  if (symbol == "+") return Op::Add;
  if (symbol == "-") return Op::Sub;
  if (symbol == "*") return Op::Mul;
  if (symbol == "/") return Op::Div;
  if (symbol == "^") return Op::Pow;
  return std::nullopt;
}

std::string line_of(SourceRange r) { return "line " + std::to_string(r.begin.line); }

// Names visible in one loss, and how they got there.
struct Binding {
  enum class Kind { Input, Param, Let, Terminal } kind;
  Expr expr;
  SourceRange defined_at;
};

std::string_view describe(Binding::Kind kind) {
  switch (kind) {
    case Binding::Kind::Input: return "an input";
    case Binding::Kind::Param: return "a param";
    case Binding::Kind::Let: return "a let";
    case Binding::Kind::Terminal: return "a preset name";
  }
  return "a name";
}

// Lowers the expressions of one loss. An expression with an error lowers to an
// empty Expr; its parents stay quiet about it, so one mistake is reported once.
class ExprLowering {
 public:
  ExprLowering(const std::vector<AstExpr>& exprs, DiagnosticSink& sink) : exprs_(exprs), sink_(sink) {}

  std::unordered_map<std::string, Binding> scope;
  std::unordered_map<std::string, SourceRange> later_lets;  // defined further down the block
  std::string defining;                                      // the let being defined

  Expr lower(AstId id) {
    const AstExpr& e = exprs_[id];
    switch (e.kind) {
      case AstExpr::Kind::Number: return constant(e.number);
      case AstExpr::Kind::Name: return name(e);
      case AstExpr::Kind::Call: return call(e);
      case AstExpr::Kind::Unary: {
        const AstExpr& operand = exprs_[e.args[0]];
        if (operand.kind == AstExpr::Kind::Number) return constant(-operand.number);  // `-2` is one number
        return build(e, Op::Neg, {lower(e.args[0])}, {e.args[0]});
      }
      case AstExpr::Kind::Binary:
        return build(e, *binary_op(e.text), {lower(e.args[0]), lower(e.args[1])}, {e.args[0], e.args[1]});
      case AstExpr::Kind::Field: return box_field(e);
    }
    return {};
  }

 private:
  Expr name(const AstExpr& e) {
    if (auto it = scope.find(e.text); it != scope.end()) return it->second.expr;  // empty if it had an error
    if (e.text == defining) {
      sink_.error(e.range, "let " + quoted(e.text) + " refers to itself");
    } else if (auto later = later_lets.find(e.text); later != later_lets.end()) {
      sink_.error(e.range, quoted(e.text) + " is used before its let on " + line_of(later->second));
    } else if (find_function(e.text)) {
      sink_.error(e.range, quoted(e.text) + " is a function; call it as " + e.text + "(...)");
    } else if (!sink_.full()) {  // a full sink drops the message: skip the costly search for a guess
      std::vector<std::string> names;
      for (const auto& [n, b] : scope) names.push_back(n);
      std::sort(names.begin(), names.end());
      std::string guess = closest_spelling(e.text, names);
      sink_.error(e.range, "unknown name " + quoted(e.text) + (guess.empty() ? "" : "; did you mean " + quoted(guess) + "?"));
    }
    return {};
  }

  Expr call(const AstExpr& e) {
    std::optional<Op> op = find_function(e.text);
    if (!op) {
      if (auto it = scope.find(e.text); it != scope.end()) {
        sink_.error(e.name_range, quoted(e.text) + " is " + std::string(describe(it->second.kind)) + ", not a function");
      } else {
        std::vector<std::string> names(function_spellings().begin(), function_spellings().end());
        std::string guess = closest_spelling(e.text, names);
        sink_.error(e.name_range,
                    "unknown function " + quoted(e.text) + (guess.empty() ? "" : "; did you mean " + quoted(guess) + "?"));
      }
      for (AstId a : e.args) lower(a);  // still report errors inside the arguments
      return {};
    }
    const OpInfo& info = op_info(*op);
    if (static_cast<int>(e.args.size()) != info.arity) {
      sink_.error(e.range, quoted(e.text) + " takes " + std::to_string(info.arity) + " argument" +
                               (info.arity == 1 ? "" : "s") + ", got " + std::to_string(e.args.size()));
      for (AstId a : e.args) lower(a);
      return {};
    }
    std::vector<Expr> args;
    for (AstId a : e.args) args.push_back(lower(a));
    return build(e, *op, std::move(args), e.args);
  }

  Expr box_field(const AstExpr& e) {
    Expr object = lower(e.args[0]);
    std::optional<int> index = find_box_field(e.text);
    if (!index) {
      sink_.error(e.name_range, "unknown box field " + quoted(e.text) + "; a box has x1, y1, x2 and y2");
      return {};
    }
    if (!object) return {};
    if (!object->type().is_box()) {
      sink_.error(exprs_[e.args[0]].range,
                  "field ." + e.text + " of a " + object->type().str() + " value; only boxes have fields");
      return {};
    }
    return field(object, *index);
  }

  Expr build(const AstExpr& e, Op op, std::vector<Expr> args, const std::vector<AstId>& arg_ids) {
    for (const Expr& a : args)
      if (!a) return {};
    std::vector<Type> types;
    for (const Expr& a : args) types.push_back(a->type());
    TypeCheck check = check_types(op, types);
    if (!check.type) {
      SourceRange where = check.bad_arg >= 0 ? exprs_[arg_ids[check.bad_arg]].range : e.range;
      std::string message = check.error;
      if (e.kind == AstExpr::Kind::Binary || e.kind == AstExpr::Kind::Unary)  // name the operator as written
        message = quoted(e.text) + message.substr(message.find('\'', 1) + 1);
      sink_.error(where, message);
      return {};
    }
    return make(op, args);
  }

  const std::vector<AstExpr>& exprs_;
  DiagnosticSink& sink_;
};

std::optional<Type> lower_type(const AstInput& in, DiagnosticSink& sink) {
  if (in.type_name == "real") {
    if (in.width.empty()) return Type::real();
    if (std::isdigit(static_cast<unsigned char>(in.width[0]))) {
      unsigned long long width = 0;
      auto r = std::from_chars(in.width.data(), in.width.data() + in.width.size(), width);
      if (r.ec != std::errc() || r.ptr != in.width.data() + in.width.size() || width == 0 || width > (1u << 24)) {
        sink.error(in.type_range, "row width " + quoted(in.width) + " must be a positive integer or a name such as C");
        return std::nullopt;
      }
    }
    return Type::vec(Symbol::intern(in.width));
  }
  if (in.type_name == "box") {
    if (!in.width.empty()) {
      sink.error(in.type_range, "a box has no width; write 'box'");
      return std::nullopt;
    }
    return Type::box();
  }
  sink.error(in.type_range, "unknown type " + quoted(in.type_name) + "; the types are real, real[C] and box");
  return std::nullopt;
}

void check_result(const Expr& body, SourceRange where, std::string_view loss, DiagnosticSink& sink) {
  if (!body) return;
  if (!body->type().is_real())
    sink.error(where, "loss " + quoted(loss) + " must give one real per element or row, got " + body->type().str() +
                          (body->type().is_vec() ? "; reduce the row with sum, mean or dot" : ""));
  else if (body->depth() > limits::kMaxIrDepth)
    sink.error(where, "loss " + quoted(loss) + " is " + std::to_string(body->depth()) +
                          " operators deep once its lets are expanded; the limit is " +
                          std::to_string(limits::kMaxIrDepth));
}

Loss lower_loss(const AstFile& file, const AstLoss& ast, DiagnosticSink& sink) {
  Loss loss;
  loss.name = ast.name;
  loss.loc = ast.name_range.begin;
  ExprLowering lowering(file.exprs, sink);
  auto& scope = lowering.scope;
  auto bind = [&](const std::string& name, SourceRange at, Binding b) {
    if (auto it = scope.find(name); it != scope.end()) {
      sink.error(at, quoted(name) + " is already defined as " + std::string(describe(it->second.kind)) + " on " +
                         line_of(it->second.defined_at));
      return false;
    }
    scope.emplace(name, std::move(b));
    return true;
  };

  if (ast.inputs.empty()) sink.error(ast.name_range, "loss " + quoted(ast.name) + " has no inputs");
  for (const AstInput& in : ast.inputs) {
    if (scope.count(in.name)) {
      sink.error(in.name_range, "duplicate input " + quoted(in.name));
      continue;
    }
    std::optional<Type> type = lower_type(in, sink);
    if (!type) {  // reported; uses of the input stay quiet
      scope.emplace(in.name, Binding{Binding::Kind::Input, Expr(), in.name_range});
      continue;
    }
    int index = static_cast<int>(loss.inputs.size());
    loss.inputs.push_back({in.name, *type, in.pred});
    bind(in.name, in.name_range, {Binding::Kind::Input, input(index, in.name, *type), in.name_range});
  }
  for (const AstStmt& s : ast.stmts)
    if (s.kind == AstStmt::Kind::Let) lowering.later_lets.emplace(s.name, s.name_range);
  for (const AstStmt& s : ast.stmts) {
    lowering.later_lets.erase(s.name);
    if (s.kind == AstStmt::Kind::Param) {
      int index = static_cast<int>(loss.params.size());
      if (bind(s.name, s.name_range, {Binding::Kind::Param, param(index, s.name), s.name_range}))
        loss.params.push_back({s.name, s.value});
      continue;
    }
    lowering.defining = s.name;
    Expr value = lowering.lower(s.expr);
    lowering.defining.clear();
    if (!value) {  // reported; uses of the let stay quiet
      scope.emplace(s.name, Binding{Binding::Kind::Let, Expr(), s.name_range});
      continue;
    }
    if (bind(s.name, s.name_range, {Binding::Kind::Let, value, s.name_range})) loss.lets.push_back({s.name, value});
  }
  loss.body = lowering.lower(ast.result);
  check_result(loss.body, file.at(ast.result).range, ast.name, sink);
  return loss;
}

}  // namespace

std::string closest_spelling(std::string_view word, std::span<const std::string> candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    // The distance is at least the difference in length: no need to compute it then.
    if (std::max(word.size(), c.size()) - std::min(word.size(), c.size()) >= best_distance) continue;
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

Module lower_file(const AstFile& file) {
  DiagnosticSink sink(file.source);
  Module module;
  std::unordered_map<std::string, SourceRange> seen;
  for (const AstLoss& ast : file.losses) {
    if (auto it = seen.find(ast.name); it != seen.end()) {
      sink.error(ast.name_range, "duplicate loss " + quoted(ast.name), "first defined on " + line_of(it->second));
      continue;
    }
    seen.emplace(ast.name, ast.name_range);
    Loss loss = lower_loss(file, ast, sink);
    if (sink.empty()) module.losses.push_back(std::move(loss));
  }
  sink.throw_if_errors();
  return module;
}

Loss lower_formula(const AstFormula& formula, const Preset& preset, std::string name) {
  DiagnosticSink sink(formula.source);
  ExprLowering lowering(formula.exprs, sink);
  for (const NamedExpr& t : preset.terminals)
    lowering.scope.emplace(t.name, Binding{Binding::Kind::Terminal, t.expr, {}});
  Loss loss;
  loss.name = std::move(name);
  loss.preset = preset.name;
  loss.inputs = preset.inputs;
  for (const NamedExpr& t : preset.terminals)
    if (t.expr->op() != Op::Input) loss.lets.push_back(t);
  loss.body = lowering.lower(formula.root);
  check_result(loss.body, formula.at(formula.root).range, loss.name, sink);
  sink.throw_if_errors();
  return loss;
}

}  // namespace lossforge
