#include "cli/loss_source.hpp"

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"
#include "compiler/presets.hpp"

namespace lossforge::cli {
namespace {

// source_from_argument's name for text that is not a readable file.
constexpr std::string_view kArgumentSourceName = "<arg>";

std::string loss_names(const Module& module) {
  std::string names;
  for (const Loss& loss : module.losses) names += (names.empty() ? "" : ", ") + loss.name;
  return names;
}

// An argument as it appears in a message: quoted, control characters escaped, long text cut.
std::string shown_argument(const std::string& argument) {
  constexpr size_t kMaxShown = 60;
  if (argument.size() <= kMaxShown) return quote_token(argument);
  return quote_token(argument.substr(0, kMaxShown)) + "...";
}

// Whether a file parses as `loss` definitions: then --pset is a mistake, and
// reporting it beats a screen of syntax errors from reading it as a formula.
bool defines_losses(const SourcePtr& source) {
  try {
    return !load_module(source).losses.empty();
  } catch (const CompileError&) {
    return false;
  }
}

}  // namespace

LossSet load_losses(const std::string& argument, const std::string& preset_name) {
  LossSet set;
  set.source = source_from_argument(argument);
  const bool is_file = set.source->name() != kArgumentSourceName;
  if (preset_name.empty()) {
    if (!is_file)
      throw UsageError(shown_argument(argument) +
                       " is not a readable file; to use it as a formula, give --pset (one of: " + preset_names() +
                       ")");
    set.module = load_module(set.source);
    return set;
  }
  const Preset* preset = find_preset(preset_name);
  if (!preset) throw UsageError("unknown preset '" + preset_name + "' (presets: " + preset_names() + ")");
  if (is_file && defines_losses(set.source))
    throw UsageError("--pset reads a bare formula, but " + set.source->name() +
                     " defines losses; drop --pset (and pick one with --loss)");
  set.formula = true;
  set.module.losses.push_back(load_formula(set.source, *preset));
  return set;
}

const Loss& select_loss(const LossSet& losses, const std::string& name) {
  const Module& module = losses.module;
  const std::string& file = losses.source->name();
  if (losses.formula) {
    if (!name.empty()) throw UsageError("--loss picks a loss from a file; a bare formula is a single loss");
    return module.losses.front();
  }
  if (name.empty()) {
    if (module.losses.size() == 1) return module.losses.front();
    if (module.losses.empty()) throw InputError(file + ": defines no loss");
    throw UsageError(file + " defines several losses; choose one with --loss (" + loss_names(module) + ")");
  }
  if (const Loss* loss = module.find(name)) return *loss;
  throw UsageError(file + ": no loss named " + quote_token(name) + " (losses: " + loss_names(module) + ")");
}

void add_loss_options(CLI::App& app, LossArgs& args, const std::string& loss_help) {
  app.add_option("source", args.source, "A .loss file, or a bare formula (infix or DEAP prefix) with --pset")
      ->type_name("FILE.loss|EXPR")
      ->required();
  if (!loss_help.empty()) app.add_option("--loss", args.loss_name, loss_help)->type_name("NAME");
  app.add_option("--pset", args.preset,
                 "Read the argument (text, or a file's contents) as a bare formula over this preset's inputs: " +
                     preset_names())
      ->type_name("PRESET");
}

}  // namespace lossforge::cli
