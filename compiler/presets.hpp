// Signature presets (SPEC §2): the inputs a bare formula sees.
//
// CSE-Autoloss publishes losses as bare DEAP expressions over fixed names (X, Y,
// Z; X, Q, PY, NY; U, I, E). A preset supplies those names: the loss inputs
// (pred first) and, for `reg`, values derived from the boxes. Printing a formula
// with terminal_names(preset) writes it back in those names.
#pragma once

#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/loss.hpp"

namespace lossforge {

struct Preset {
  std::string name;         // "multi_cls", "binary_cls", "reg"
  std::string description;  // one line, for --help and the REPL
  std::vector<LossInput> inputs;
  // Every name a formula may use, in order: the inputs, then derived values.
  std::vector<NamedExpr> terminals;
  // The names the search draws leaves from (SPEC §6).
  std::vector<std::string> search_terminals;
};

std::span<const Preset> all_presets();
const Preset* find_preset(std::string_view name);  // nullptr when unknown
std::string preset_names();                         // "multi_cls, binary_cls, reg"

// Node -> name for the preset's terminals, so that printers write `I`, not `inter(P, G)`.
std::unordered_map<const Node*, std::string> terminal_names(const Preset& preset);
// The Expr of one terminal; throws std::out_of_range for an unknown name.
const Expr& terminal(const Preset& preset, std::string_view name);

}  // namespace lossforge
