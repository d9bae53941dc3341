#include "compiler/ops.hpp"

#include <vector>

namespace lossforge {
namespace {

using K = OpKind;
using S = Syntax;

// clang-format off
constexpr OpInfo kOps[kOpCount] = {
  // op            name          deap          aliases                 arity kind          syntax     sym  precedence           paper  doc
  {Op::Const,      "const",      "",           {},                     0, K::Leaf,        S::Leaf,   "",  prec::kPrimary,        false, "a number"},
  {Op::Input,      "input",      "",           {},                     0, K::Leaf,        S::Leaf,   "",  prec::kPrimary,        false, "an input of the loss"},
  {Op::Param,      "param",      "",           {},                     0, K::Leaf,        S::Leaf,   "",  prec::kPrimary,        false, "a tunable constant, overridable at run time"},
  {Op::Add,        "add",        "Add",        {},                     2, K::Elementwise, S::Infix,  "+", prec::kAdditive,       true,  "a + b"},
  {Op::Sub,        "sub",        "Sub",        {},                     2, K::Elementwise, S::Infix,  "-", prec::kAdditive,       true,  "a - b"},
  {Op::Mul,        "mul",        "Mul",        {},                     2, K::Elementwise, S::Infix,  "*", prec::kMultiplicative, true,  "a * b"},
  {Op::Div,        "div",        "Div",        {},                     2, K::Elementwise, S::Infix,  "/", prec::kMultiplicative, true,  "a / (b + 1e-20), protected"},
  {Op::Neg,        "neg",        "Neg",        {},                     1, K::Elementwise, S::Prefix, "-", prec::kUnary,          true,  "-a"},
  {Op::Pow,        "pow",        "Pow",        {},                     2, K::Elementwise, S::Infix,  "^", prec::kPower,          false, "a ^ b, as std::pow"},
  {Op::Log,        "log",        "Log",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "ln(a + 1e-20), protected"},
  {Op::Exp,        "exp",        "Exp",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "exp(min(a, 88)), protected"},
  {Op::Sqrt,       "sqrt",       "Sqrt",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "square root"},
  {Op::Abs,        "abs",        "Abs",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "absolute value"},
  {Op::Sin,        "sin",        "Sin",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "sine"},
  {Op::Cos,        "cos",        "Cos",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "cosine"},
  {Op::Tanh,       "tanh",       "Tanh",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "hyperbolic tangent"},
  {Op::Relu,       "relu",       "Relu",       {"ReLU"},               1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "max(a, 0)"},
  {Op::Softplus,   "softplus",   "Softplus",   {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "ln(1 + e^a), computed stably"},
  {Op::Sigmoid,    "sigmoid",    "Sig",        {"Sigmoid"},            1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "1 / (1 + e^-a)"},
  {Op::Serf,       "serf",       "Serf",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "(erf(sqrt(pi)/2 * a/2) + 1) / 2, the scaled error function"},
  {Op::Salf,       "salf",       "Salf",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "((a/2) / sqrt(1 + (a/2)^2) + 1) / 2, the scaled algebraic function"},
  {Op::Sgdf,       "sgdf",       "Sgdf",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "((2/pi) * 2 * atan(tanh(pi*a/8)) + 1) / 2, the scaled Gudermannian"},
  {Op::Erf,        "erf",        "Erf",        {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "error function"},
  {Op::Erfc,       "erfc",       "Erfc",       {},                     1, K::Elementwise, S::Call,   "",  prec::kPrimary,        true,  "complementary error function"},
  {Op::Min,        "min",        "Min",        {},                     2, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "the smaller of a and b (a tie splits the gradient)"},
  {Op::Max,        "max",        "Max",        {},                     2, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "the larger of a and b (a tie splits the gradient)"},
  {Op::Clamp,      "clamp",      "Clamp",      {},                     3, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "min(max(a, lo), hi)"},
  {Op::Softmax,    "softmax",    "Softmax",    {},                     1, K::Rowwise,     S::Call,   "",  prec::kPrimary,        true,  "row-wise softmax of a real[C]"},
  {Op::LogSoftmax, "log_softmax","LogSoftmax", {"logsoftmax"},         1, K::Rowwise,     S::Call,   "",  prec::kPrimary,        false, "row-wise log of the softmax, computed stably"},
  {Op::Logsumexp,  "logsumexp",  "Logsumexp",  {"LogSumExp"},          1, K::Rowwise,     S::Call,   "",  prec::kPrimary,        false, "ln of the row sum of e^a, computed stably"},
  {Op::Dot,        "dot",        "Dot",        {},                     2, K::Rowwise,     S::Call,   "",  prec::kPrimary,        true,  "row-wise sum of a * b"},
  {Op::Sum,        "sum",        "Sum",        {},                     1, K::Rowwise,     S::Call,   "",  prec::kPrimary,        false, "row sum"},
  {Op::Mean,       "mean",       "Mean",       {},                     1, K::Rowwise,     S::Call,   "",  prec::kPrimary,        false, "row mean"},
  {Op::Field,      "field",      "",           {},                     1, K::Box,         S::Field,  "",  prec::kPrimary,        false, "a box coordinate: p.x1, p.y1, p.x2, p.y2"},
  {Op::Area,       "area",       "Area",       {},                     1, K::Box,         S::Call,   "",  prec::kPrimary,        false, "(x2 - x1) * (y2 - y1)"},
  {Op::Inter,      "inter",      "Inter",      {},                     2, K::Box,         S::Call,   "",  prec::kPrimary,        false, "area of the overlap, clamp(w, 0) * clamp(h, 0)"},
  {Op::Enclose,    "enclose",    "Enclose",    {},                     2, K::Box,         S::Call,   "",  prec::kPrimary,        false, "area of the smallest enclosing box, clamp(w, 0) * clamp(h, 0)"},
  {Op::Iou,        "iou",        "Iou",        {"IoU"},                2, K::Box,         S::Call,   "",  prec::kPrimary,        false, "inter / (area(p) + area(g) - inter + 1e-7)"},
  {Op::Where,      "where",      "Where",      {},                     3, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "a where c is nonzero (or NaN), else b: where(c, a, b)"},
  {Op::MinShare,   "min_share",  "MinShare",   {},                     2, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "a's share of the slope of min(a, b): 1 if a < b or a is NaN, 1/2 at a tie, else 0"},
  {Op::MaxShare,   "max_share",  "MaxShare",   {},                     2, K::Elementwise, S::Call,   "",  prec::kPrimary,        false, "a's share of the slope of max(a, b): 1 if a > b or a is NaN, 1/2 at a tie, else 0"},
};
// clang-format on

constexpr bool table_is_indexed_by_op() {
  for (int i = 0; i < kOpCount; ++i)
    if (static_cast<int>(kOps[i].op) != i) return false;
  return true;
}
static_assert(table_is_indexed_by_op(), "kOps must list every Op in enum order");

const std::vector<std::pair<std::string_view, Op>>& spelling_table() {
  static const auto* table = [] {
    auto* t = new std::vector<std::pair<std::string_view, Op>>;
    for (const OpInfo& info : kOps) {
      if (info.kind == OpKind::Leaf || info.op == Op::Field) continue;
      t->emplace_back(info.name, info.op);
      if (!info.deap.empty()) t->emplace_back(info.deap, info.op);
      for (auto alias : info.aliases)
        if (!alias.empty()) t->emplace_back(alias, info.op);
    }
    return t;
  }();
  return *table;
}

constexpr std::string_view kFieldNames[4] = {"x1", "y1", "x2", "y2"};

}  // namespace

const OpInfo& op_info(Op op) { return kOps[static_cast<int>(op)]; }

std::span<const OpInfo> all_ops() { return kOps; }

std::optional<Op> find_function(std::string_view spelling) {
  for (const auto& [name, op] : spelling_table())
    if (name == spelling) return op;
  return std::nullopt;
}

std::span<const std::string_view> function_spellings() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string_view>;
    for (const auto& entry : spelling_table()) v->push_back(entry.first);
    return v;
  }();
  return *names;
}

std::optional<int> find_box_field(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (kFieldNames[i] == name) return i;
  return std::nullopt;
}

std::string_view box_field_name(int index) { return index >= 0 && index < 4 ? kFieldNames[index] : "?"; }

TypeCheck check_types(Op op, std::span<const Type> args) {
  const OpInfo& info = op_info(op);
  const std::string name = "'" + std::string(info.name) + "'";
  auto fail = [&](int arg, std::string why) { return TypeCheck{std::nullopt, std::move(why), arg}; };
  if (static_cast<int>(args.size()) != info.arity)
    return fail(-1, name + " takes " + std::to_string(info.arity) + " argument" + (info.arity == 1 ? "" : "s") +
                        ", got " + std::to_string(args.size()));
  switch (info.kind) {
    case OpKind::Leaf:
      return fail(-1, name + " is not an operator");
    case OpKind::Elementwise: {
      std::optional<Type> row;
      for (size_t i = 0; i < args.size(); ++i) {
        if (args[i].is_box())
          return fail(int(i), name + " takes real or real[C] values, got box (use a field such as .x1, or area/inter/iou)");
        if (args[i].is_vec()) {
          if (row && row->width() != args[i].width())
            return fail(int(i), name + " of " + row->str() + " and " + args[i].str() + ": row widths differ");
          row = args[i];
        }
      }
      return {row ? *row : Type::real(), {}, -1};
    }
    case OpKind::Rowwise: {
      for (size_t i = 0; i < args.size(); ++i)
        if (!args[i].is_vec())
          return fail(int(i), name + " takes a real[C] row, got " + args[i].str());
      if (args.size() == 2 && args[0].width() != args[1].width())
        return fail(1, name + " of " + args[0].str() + " and " + args[1].str() + ": row widths differ");
      bool keeps_row = op == Op::Softmax || op == Op::LogSoftmax;
      return {keeps_row ? args[0] : Type::real(), {}, -1};
    }
    case OpKind::Box: {
      for (size_t i = 0; i < args.size(); ++i)
        if (!args[i].is_box()) {
          if (op == Op::Field) return fail(int(i), "box field of a " + args[i].str() + " value; fields need a box");
          return fail(int(i), name + " takes boxes, got " + args[i].str());
        }
      return {Type::real(), {}, -1};
    }
  }
  return fail(-1, name + ": unknown operator kind");
}

}  // namespace lossforge
