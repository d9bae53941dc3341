// The operator table: every operator of the DSL, once.
//
// Each entry gives the operator's spellings (canonical call name, the DEAP /
// CSE-Autoloss name, more aliases), arity, how it types, how it prints, whether
// it belongs to the CSE-Autoloss search space, and its meaning in one line. The
// exact float semantics live in compiler/semantics.hpp; every back end
// (interpreter, LLVM, CUDA, C++) switches over Op, and each back end's tests loop
// over all_ops() so that they fail when it lacks an operator
// (tests/interpreter_gradients_test.cpp for the interpreter). Adding an operator is one entry here,
// one in semantics.hpp, and one case per back end.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "compiler/types.hpp"

namespace lossforge {

enum class Op : uint8_t {
  // Leaves.
  Const, Input, Param,
  // Arithmetic with infix syntax.
  Add, Sub, Mul, Div, Neg, Pow,
  // Element-wise functions (broadcast real against real[C]).
  Log, Exp, Sqrt, Abs, Sin, Cos, Tanh, Relu, Softplus, Sigmoid, Serf, Salf, Sgdf, Erf, Erfc,
  Min, Max, Clamp,
  // Row-wise over real[C].
  Softmax, LogSoftmax, Logsumexp, Dot, Sum, Mean,
  // Boxes. Field reads x1, y1, x2 or y2 (index 0..3).
  Field, Area, Inter, Enclose, Iou,
  // Piecewise element-wise helpers (last, so older operators keep their hashes):
  // what symbolic derivatives at kinks are written with (compiler/autodiff.hpp).
  Where, MinShare, MaxShare,
};
inline constexpr int kOpCount = static_cast<int>(Op::MaxShare) + 1;

enum class OpKind : uint8_t {
  Leaf,         // Const, Input, Param
  Elementwise,  // real -> real, lifted over real[C] with broadcasting
  Rowwise,      // reduces or normalises along a real[C] row
  Box,          // geometry of boxes, yields real
};

enum class Syntax : uint8_t {
  Leaf,    // a number or a name
  Infix,   // a + b
  Prefix,  // -a
  Call,    // f(a, b)
  Field,   // p.x1
};

struct OpInfo {
  Op op;
  std::string_view name;   // canonical spelling as a call: "add", "sigmoid", "log_softmax"
  std::string_view deap;   // the DEAP / CSE-Autoloss spelling: "Add", "Sig"; empty for leaves
  std::array<std::string_view, 2> aliases;  // further accepted spellings
  int arity;
  OpKind kind;
  Syntax syntax;           // how the infix printer writes it
  std::string_view symbol; // "+", "-", ...: for Infix and Prefix
  int precedence;          // for Infix and Prefix: larger binds tighter
  bool paper_set;          // in the CSE-Autoloss search space (SPEC §6)
  std::string_view doc;    // the meaning, one line
};

const OpInfo& op_info(Op op);
inline std::string_view op_name(Op op) { return op_info(op).name; }
std::span<const OpInfo> all_ops();

// Finds a callable operator by any of its spellings (name, DEAP name, alias).
std::optional<Op> find_function(std::string_view spelling);
// All callable spellings, for "did you mean" and completion.
std::span<const std::string_view> function_spellings();

// Box fields: p.x1 is Field with index 0, ..., p.y2 index 3.
std::optional<int> find_box_field(std::string_view name);
std::string_view box_field_name(int index);

// The type rule. On success `type` is set; otherwise `error` says why, naming
// the operator, and `bad_arg` is the argument to point at (-1: the call).
struct TypeCheck {
  std::optional<Type> type;
  std::string error;
  int bad_arg = -1;
};
TypeCheck check_types(Op op, std::span<const Type> args);

// Precedence levels of the infix syntax, loosest first.
namespace prec {
inline constexpr int kAdditive = 1;        // + -
inline constexpr int kMultiplicative = 2;  // * /
inline constexpr int kUnary = 3;           // -a
inline constexpr int kPower = 4;           // a ^ b (right-associative)
inline constexpr int kPrimary = 5;         // numbers, names, calls, p.x1
}  // namespace prec

}  // namespace lossforge
