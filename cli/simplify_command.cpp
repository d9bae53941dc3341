// `lossforge simplify`: print a loss simplified, with its size before and after.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/loss_source.hpp"
#include "compiler/presets.hpp"
#include "compiler/print.hpp"
#include "compiler/simplify.hpp"

namespace lossforge::cli {
namespace {

struct SimplifyArgs {
  LossArgs loss;
};

// "DAG nodes 31 -> 12, tree size 54 -> 17": distinct nodes, and nodes when
// shared subexpressions are written out.
std::string sizes(const Expr& before, const Expr& after) {
  return "DAG nodes " + std::to_string(dag_size(before)) + " -> " + std::to_string(dag_size(after)) +
         ", tree size " + std::to_string(before->tree_size()) + " -> " + std::to_string(after->tree_size());
}

int run_simplify(const SimplifyArgs& args) {
  const LossSet losses = load_losses(args.loss);
  const Loss& loss = select_loss(losses, args.loss.loss_name);
  const Loss simplified = simplify(loss);
  if (losses.formula) {
    // A bare formula prints back as one, in the preset's names.
    std::cout << to_infix(simplified.body, terminal_names(*find_preset(loss.preset))) << '\n';
  } else {
    std::cout << to_text(simplified);
  }
  std::cout << "# " << sizes(loss.body, simplified.body) << '\n';  // a DSL comment: the output still parses
  return exit_code::kOk;
}

}  // namespace

Command add_simplify_command(CLI::App& parent) {
  auto args = std::make_shared<SimplifyArgs>();
  CLI::App* app = parent.add_subcommand("simplify", "Print a loss simplified, with node counts before and after");
  add_loss_options(*app, args->loss, "The loss to simplify when the file defines several");
  app->footer(
      "Prints the simplified loss (a formula stays a formula, in the preset's names), then the comment line\n"
      "'# DAG nodes A -> B, tree size C -> D', so the output still parses. The result computes the same values and\n"
      "gradients up to rounding, except where a protection (1e-20 in log and div, exp's clamp at 88) is\n"
      "active: the stable forms (log_softmax, softplus) compute the exact value there.\n");
  return {app, [args] { return run_simplify(*args); }};
}

}  // namespace lossforge::cli
