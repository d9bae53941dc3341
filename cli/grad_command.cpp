// `lossforge grad`: the symbolic gradient of a loss, printed as DSL text.
//
// One loss per part of every pred input (compiler/autodiff.hpp): text that
// `lossforge eval` and `check` read back as it is.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/loss_source.hpp"
#include "compiler/autodiff.hpp"
#include "compiler/presets.hpp"
#include "compiler/print.hpp"

namespace lossforge::cli {
namespace {

struct GradArgs {
  LossArgs loss;
};

// What one printed loss is the derivative of, as a comment line.
std::string heading(const Loss& loss, const LossInput& input, size_t part) {
  std::string text = "# d " + loss.name + " / d " + input.name;
  if (input.type.is_box()) return text + "." + std::string(box_field_name(int(part))) + "\n";
  if (input.type.is_vec()) return text + ", a " + input.type.str() + " row, as its dot product with w\n";
  return text + "\n";
}

void print_gradients(const Loss& loss, bool first) {
  const Gradients gradients = differentiate(loss);
  const std::vector<Loss> parts = gradient_losses(loss, gradients);
  size_t next = 0;
  for (const InputGradient& grad : gradients.inputs)
    for (size_t c = 0; c < grad.parts.size(); ++c, ++next) {
      if (!first || next > 0) std::cout << '\n';
      std::cout << heading(loss, loss.inputs[grad.input], c) << to_text(parts[next]);
    }
}

int run_grad(const GradArgs& args) {
  const LossSet losses = load_losses(args.loss);
  if (!args.loss.loss_name.empty() || losses.formula || losses.module.losses.size() == 1) {
    print_gradients(select_loss(losses, args.loss.loss_name), true);
    return exit_code::kOk;
  }
  bool first = true;
  for (const Loss& loss : losses.module.losses) {
    print_gradients(loss, first);
    first = false;
  }
  return exit_code::kOk;
}

}  // namespace

Command add_grad_command(CLI::App& parent) {
  auto args = std::make_shared<GradArgs>();
  CLI::App* app = parent.add_subcommand("grad", "Print the derivatives of a loss by its pred inputs as DSL text");
  add_loss_options(*app, args->loss, "The loss of the file to differentiate (default: every loss)");
  app->footer(
      "Prints one loss per derivative, named d_LOSS_dINPUT (box inputs: one per coordinate, d_LOSS_dP_x1, ...),\n"
      "over the loss's inputs and params; shared subexpressions become lets. A real[C] input's derivative is a\n"
      "row, which a loss cannot return: it is printed as a let and the loss gives its dot product with an extra\n"
      "input w (a one-hot w picks one column). Slopes at kinks are those of `eval` (min/max ties split, relu'(0)\n"
      "= 0, exp flat above 88), written with where, min_share and max_share. The output parses back.\n");
  return {app, [args] { return run_grad(*args); }};
}

}  // namespace lossforge::cli
