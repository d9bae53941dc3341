// The `lossforge` executable: parses the command line, runs one subcommand and
// turns every failure into a one-line reason and an exit status.
#include <CLI/CLI.hpp>
#include <iostream>
#include <vector>

#include "cli/command.hpp"
#include "cli/report_errors.hpp"

namespace {

using namespace lossforge;
using namespace lossforge::cli;

constexpr const char* kFooter = R"(Run 'lossforge COMMAND --help' for the options of a command.
Exit status: 0 ok, 1 bad input (file, formula, data) or a back end this build lacks,
2 bad command line, 3 NaN or infinity (eval's result, a training's loss).
)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("lossforge: loss functions for object detection, written as text and compiled", "lossforge");
  app.set_version_flag("--version", "lossforge " LOSSFORGE_VERSION);
  app.require_subcommand(1);
  app.footer(kFooter);
  const std::vector<Command> commands = {
      add_eval_command(app),  add_check_command(app),   add_fmt_command(app),  add_simplify_command(app),
      add_grad_command(app),  add_repl_command(app),    add_emit_command(app), add_compile_command(app),
      add_data_command(app),  add_train_command(app),   add_search_command(app), add_bench_command(app)};

  if (argc <= 1) {
    std::cerr << app.help();
    return exit_code::kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    std::string reason = e.what();
    for (char& c : reason)
      if (c == '\n') c = ' ';
    std::string help = "lossforge";
    for (const Command& command : commands)
      if (command.app->parsed()) help += " " + command.app->get_name();
    std::cerr << "lossforge: " << reason << " (see '" << help << " --help')\n";
    return exit_code::kUsage;
  }
  for (const Command& command : commands)
    if (command.app->parsed()) return run_reporting_errors(command.run);
  return exit_code::kUsage;  // unreachable: require_subcommand(1)
}
