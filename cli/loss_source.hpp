// The losses a FILE|EXPR argument names, for every subcommand that takes one.
//
//   focal.loss                  a file of `loss` definitions
//   'Neg(Log(Sig(X)))' --pset binary_cls
//                               a bare formula over a preset's inputs (the text
//                               itself, or the contents of a file)
#pragma once

#include <string>

#include "compiler/loss.hpp"
#include "compiler/source.hpp"

namespace CLI {
class App;
}

namespace lossforge::cli {

// The command-line words that name a loss: FILE|EXPR, --loss NAME, --pset P.
struct LossArgs {
  std::string source;
  std::string loss_name;
  std::string preset;
};

// Adds the positional FILE|EXPR and --pset to `app`, and --loss with this help
// text unless it is empty (for commands that always take every loss).
void add_loss_options(CLI::App& app, LossArgs& args, const std::string& loss_help);

struct LossSet {
  SourcePtr source;
  bool formula = false;  // a bare formula with a preset, not a file of losses
  Module module;         // a formula is one loss named "formula"
};

// Reads and checks the argument. With a preset name the text (or the file's
// contents) is one bare formula; without one the argument must be a readable
// file. Throws CompileError for bad text, and UsageError when the argument is
// not a file and no preset was given, the preset is unknown, or a preset was
// given for a file of `loss` definitions.
LossSet load_losses(const std::string& argument, const std::string& preset_name);
inline LossSet load_losses(const LossArgs& args) { return load_losses(args.source, args.preset); }

// The loss `name` names, or the only one when `name` is empty. Throws
// UsageError listing the names when that is not exactly one loss.
const Loss& select_loss(const LossSet& losses, const std::string& name);

}  // namespace lossforge::cli
