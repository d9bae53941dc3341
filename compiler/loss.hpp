// A checked loss: its signature, tunable params and body as IR.
//
// The body computes the loss of one element (for `real` inputs) or one row (for
// `real[C]` inputs), always a `real`. Input nodes in the body refer to
// `inputs` by index, Param nodes to `params` by index. `lets` keeps the names
// the author gave to subexpressions so that printers can use them again.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/source.hpp"

namespace lossforge {

struct LossInput {
  std::string name;
  Type type;
  bool pred = false;  // gradients are produced for exactly the pred inputs
};

struct LossParam {
  std::string name;
  double value = 0;  // the default; callers may override it at run time
};

struct NamedExpr {
  std::string name;
  Expr expr;
};

struct Loss {
  std::string name;
  std::vector<LossInput> inputs;
  std::vector<LossParam> params;
  std::vector<NamedExpr> lets;  // in definition order
  Expr body;
  std::string preset;           // set when built from a bare expression with a preset
  SourceLoc loc;                // where it was defined

  std::optional<size_t> find_input(std::string_view name) const;
  std::optional<size_t> find_param(std::string_view name) const;
  // Indices of the pred inputs, in input order.
  std::vector<size_t> pred_inputs() const;
};

// The losses of one file, in file order; names are unique.
struct Module {
  std::vector<Loss> losses;
  const Loss* find(std::string_view name) const;
};

}  // namespace lossforge
