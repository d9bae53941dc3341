// Checking and lowering: AST -> typed IR.
//
// Resolves every name (inputs, params, lets, preset terminals, functions),
// checks arity and types with the operator table's rules, expands lets into the
// hash-consed DAG and builds Loss values. Every problem becomes a diagnostic at
// its location, and as many as can be found are reported together; nothing
// with an error reaches the IR.
#pragma once

#include <string>

#include "compiler/ast.hpp"
#include "compiler/loss.hpp"
#include "compiler/presets.hpp"

namespace lossforge {

// Throws CompileError listing every error found.
Module lower_file(const AstFile& file);
Loss lower_formula(const AstFormula& formula, const Preset& preset, std::string name);

// The closest spelling within a small edit distance, or "" (for "did you mean").
std::string closest_spelling(std::string_view word, std::span<const std::string> candidates);

}  // namespace lossforge
