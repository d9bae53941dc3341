#include "compiler/print.hpp"

#include <charconv>
#include <unordered_set>

#include "compiler/error.hpp"

namespace lossforge {
namespace {

// Printed text grows bottom-up; a DAG printed as a tree can grow exponentially.
constexpr size_t kMaxPrintedBytes = size_t(64) << 20;

struct Printed {
  std::string text;
  int precedence = prec::kPrimary;
};

// Nodes reachable from `root` without going through a named node, children
// first, with how many times each is used by the others (to move, not copy,
// a child's text into its last user).
struct PrintOrder {
  std::vector<const Node*> nodes;
  std::unordered_map<const Node*, int> uses;
};

PrintOrder print_order(const Node* root, const NameMap& names, bool expand_root) {
  PrintOrder order;
  std::vector<std::pair<const Node*, size_t>> stack{{root, 0}};
  std::unordered_set<const Node*> seen{root};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    bool opaque = names.count(node) && !(node == root && expand_root);
    if (!opaque && next < node->args().size()) {
      const Node* child = node->arg(next++).get();
      ++order.uses[child];
      if (seen.insert(child).second) stack.emplace_back(child, 0);
    } else {
      order.nodes.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

class InfixPrinter {
 public:
  InfixPrinter(const NameMap& names, bool deap) : names_(names), deap_(deap) {}

  std::string print(const Node* root, bool expand_root) {
    PrintOrder order = print_order(root, names_, expand_root);
    uses_ = std::move(order.uses);
    for (const Node* n : order.nodes) {
      auto name = names_.find(n);
      Printed p = name != names_.end() && !(n == root && expand_root) ? Printed{name->second} : node(*n);
      if (p.text.size() > kMaxPrintedBytes)
        throw Error("expression is too large to print as one formula; print the loss to name shared parts");
      done_[n] = std::move(p);
    }
    return std::move(done_.at(root).text);
  }

 private:
  // The text of an argument, in parentheses when its precedence is below `min`.
  std::string arg(const Node* child, int min) {
    Printed& p = done_.at(child);
    bool last_use = --uses_[child] == 0;
    std::string text = last_use ? std::move(p.text) : p.text;
    return p.precedence < min ? "(" + text + ")" : text;
  }

  // An exponent may be a minus sign on an atom, as in x^-1 or x^-y: the grammar
  // reads `^ -y` as the exponent -y. Anything looser needs parentheses.
  bool signed_atom(const Node* n) const {
    if (names_.count(n)) return false;
    if (n->is_const()) return true;
    return n->op() == Op::Neg && done_.at(n->arg(0).get()).precedence == prec::kPrimary &&
           !(n->arg(0)->is_const() && n->arg(0)->value() >= 0);
  }

  Printed node(const Node& n) {
    const OpInfo& info = n.info();
    switch (n.op()) {
      case Op::Const: return {format_number(n.value()), n.value() < 0 ? prec::kUnary : prec::kPrimary};
      case Op::Input:
      case Op::Param: return {n.name()};
      case Op::Field: return {arg(n.arg(0).get(), prec::kPrimary) + "." + std::string(box_field_name(n.index()))};
      default: break;
    }
    if (deap_) return call(info.deap, n);
    if (info.syntax == Syntax::Prefix) {
      // -2 reads back as the constant -2, so the negation of a literal is spelled as a call.
      if (n.arg(0)->is_const() && n.arg(0)->value() >= 0) return call(info.name, n);
      return {std::string(info.symbol) + arg(n.arg(0).get(), prec::kUnary), prec::kUnary};
    }
    if (info.syntax == Syntax::Infix) {
      int p = info.precedence;
      bool right_assoc = n.op() == Op::Pow;
      // (a - b) - c needs no parentheses, a - (b - c) does; ^ is the other way round.
      std::string lhs = arg(n.arg(0).get(), right_assoc ? p + 1 : p);
      std::string rhs = arg(n.arg(1).get(), right_assoc ? (signed_atom(n.arg(1).get()) ? prec::kUnary : p) : p + 1);
      std::string symbol = right_assoc ? std::string(info.symbol) : " " + std::string(info.symbol) + " ";
      return {lhs + symbol + rhs, p};  // x^2 binds tightest and reads best unspaced
    }
    return call(info.name, n);
  }

  Printed call(std::string_view name, const Node& n) {
    std::string text(name);
    text += '(';
    for (size_t i = 0; i < n.args().size(); ++i) {
      if (i > 0) text += deap_ ? "," : ", ";
      text += arg(n.arg(i).get(), 0);
    }
    text += ')';
    return {std::move(text)};
  }

  const NameMap& names_;
  bool deap_;
  std::unordered_map<const Node*, int> uses_;
  std::unordered_map<const Node*, Printed> done_;
};

bool cheap_to_repeat(const Node& n) {
  return n.is_leaf() || (n.op() == Op::Field && n.arg(0)->is_leaf());
}

}  // namespace

std::string signature(const Loss& loss) {
  std::string out = loss.name + "(";
  for (size_t i = 0; i < loss.inputs.size(); ++i) {
    const LossInput& in = loss.inputs[i];
    out += (i ? ", " : "") + std::string(in.pred ? "pred " : "") + in.name + ": " + in.type.str();
  }
  return out + ")";
}

std::string format_number(double value) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  std::string text(buf, r.ptr);
  // to_chars writes 1e-07 and 1e+20; the DSL reads 1e-7 and 1e20 the same and they read better.
  if (size_t e = text.find('e'); e != std::string::npos) {
    std::string mantissa = text.substr(0, e);
    std::string exponent = text.substr(e + 1);
    bool negative = exponent[0] == '-';
    size_t digits = exponent.find_first_not_of("+-0");
    text = mantissa + "e" + (negative ? "-" : "") + (digits == std::string::npos ? "0" : exponent.substr(digits));
  }
  return text;
}

std::string to_infix(const Expr& expr, const NameMap& names) {
  return InfixPrinter(names, false).print(expr.get(), false);
}

std::string to_deap(const Expr& expr, const NameMap& names) {
  return InfixPrinter(names, true).print(expr.get(), false);
}

std::string to_text(const Loss& loss) {
  // Names for nodes: the author's lets first, then t1, t2, ... for other shared nodes.
  NameMap names;
  std::unordered_set<std::string> taken;
  for (const LossInput& in : loss.inputs) taken.insert(in.name);
  for (const LossParam& p : loss.params) taken.insert(p.name);
  for (const NamedExpr& let : loss.lets) {
    taken.insert(let.name);
    if (!cheap_to_repeat(*let.expr)) names.emplace(let.expr.get(), let.name);
  }
  std::vector<const Node*> order = topological_order(loss.body);
  std::unordered_map<const Node*, int> parents;
  for (const Node* n : order)
    for (const Expr& a : n->args()) ++parents[a.get()];
  int counter = 0;
  for (const Node* n : order) {
    if (names.count(n) || cheap_to_repeat(*n) || parents[n] < 2) continue;
    std::string name;
    do name = "t" + std::to_string(++counter);
    while (taken.count(name));
    taken.insert(name);
    names.emplace(n, name);
  }

  std::vector<std::string> lines;
  for (const LossParam& p : loss.params) lines.push_back("param " + p.name + " = " + format_number(p.value));
  for (const Node* n : order)
    if (n != loss.body.get() && names.count(n))
      lines.push_back("let " + names.at(n) + " = " + InfixPrinter(names, false).print(n, true));
  std::string body = InfixPrinter(names, false).print(loss.body.get(), true);
  if (lines.empty()) return "loss " + signature(loss) + " = " + body + "\n";
  std::string out = "loss " + signature(loss) + " {\n";
  for (const std::string& line : lines) out += "  " + line + "\n";
  return out + "  " + body + "\n}\n";
}

std::string to_text(const Module& module) {
  std::string out;
  for (const Loss& loss : module.losses) out += (out.empty() ? "" : "\n") + to_text(loss);
  return out;
}

}  // namespace lossforge
