// `lossforge check`: parse and type-check losses, one summary line per loss.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/loss_source.hpp"
#include "compiler/ir.hpp"
#include "compiler/presets.hpp"
#include "compiler/print.hpp"
#include "search/convergence.hpp"

namespace lossforge::cli {
namespace {

struct CheckArgs {
  LossArgs loss;
};

std::string params_text(const Loss& loss) {
  if (loss.params.empty()) return "params: none";
  std::string text = "params: ";
  for (size_t i = 0; i < loss.params.size(); ++i)
    text += (i ? ", " : "") + loss.params[i].name + " = " + format_number(loss.params[i].value);
  return text;
}

// Operators are the non-leaf nodes of the DAG: shared subexpressions count once.
size_t operator_count(const Loss& loss) {
  size_t count = 0;
  for (const Node* node : topological_order(loss.body))
    if (!node->is_leaf()) ++count;
  return count;
}

// The signature, and the preset a bare formula was read with.
std::string heading(const Loss& loss) {
  return loss.preset.empty() ? signature(loss) : signature(loss) + " [" + loss.preset + "]";
}

// The convergence properties (search/convergence.hpp) of a loss with a preset's
// signature: "  convergence: finite ok, ..." or the first failed property with its witness.
std::string convergence_text(const Loss& loss) {
  const Preset* preset = matching_preset(loss);
  if (!preset) return "";
  const ConvergenceReport report = verify_convergence(loss, *preset);
  if (!report.passed) return "  convergence [" + preset->name + "]: FAILS " + report.first_failure();
  std::string text = "  convergence [" + preset->name + "]:";
  for (size_t i = 0; i < report.checks.size(); ++i) text += (i ? ", " : " ") + report.checks[i].property + " ok";
  return text;
}

// focal(pred x: real, y: real)  params: alpha = 0.25, gamma = 2  operators: 14  depth: 9
std::string summary(const Loss& loss, size_t heading_width) {
  std::string head = heading(loss);
  head.resize(std::max(head.size(), heading_width), ' ');
  return head + "  " + params_text(loss) + "  operators: " + std::to_string(operator_count(loss)) +
         "  depth: " + std::to_string(loss.body->depth()) + convergence_text(loss);
}

int run_check(const CheckArgs& args) {
  const LossSet losses = load_losses(args.loss);
  if (losses.module.losses.empty()) {
    std::cout << losses.source->name() << ": no losses\n";
    return exit_code::kOk;
  }
  // Align the columns after the signatures.
  size_t width = 0;
  for (const Loss& loss : losses.module.losses)
    width = std::max(width, heading(loss).size());
  for (const Loss& loss : losses.module.losses) std::cout << summary(loss, width) << '\n';
  return exit_code::kOk;
}

}  // namespace

Command add_check_command(CLI::App& parent) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* app = parent.add_subcommand("check", "Parse and type-check losses; print one summary line per loss");
  add_loss_options(*app, args->loss, "");
  app->footer(
      "Each line: the signature (pred inputs marked), the params with their values, the number of operators\n"
      "(distinct non-leaf nodes of the expression DAG) and its depth; for a loss with the signature of a preset\n"
      "(binary_cls, multi_cls, reg) the convergence properties the search checks: each one ok, or the first\n"
      "that fails with a witness input. Errors are printed as file:line:col\n"
      "diagnostics; the exit status is then 1 (2 for a bad command line).\n");
  return {app, [args] { return run_check(*args); }};
}

}  // namespace lossforge::cli
