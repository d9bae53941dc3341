// `lossforge repl`: the interactive shell (cli/repl/repl.hpp).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <unistd.h>

#include "cli/command.hpp"
#include "cli/repl/repl.hpp"

namespace lossforge::cli {

Command add_repl_command(CLI::App& parent) {
  auto options = std::make_shared<repl::ReplOptions>();
  auto colour = std::make_shared<std::string>("auto");
  CLI::App* app = parent.add_subcommand("repl", "Try losses interactively: values, gradients, plots, checks, code");
  app->add_option("-e,--execute", options->commands,
                  "Run this line instead of reading standard input; repeatable, run in order")
      ->type_name("LINE")
      ->allow_extra_args(false);
  app->add_flag("--no-history", options->no_history, "Neither read nor write the history file");
  app->add_option("--colour,--color", *colour, "ANSI colour in terminal plots")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  app->footer(
      "On a terminal: line editing, tab completion and a history kept in\n"
      "$XDG_DATA_HOME/lossforge/repl_history (default ~/.local/share/lossforge/repl_history).\n"
      "Ctrl-C cancels the line or the running command, Ctrl-D or :quit leaves; :help lists the commands.\n"
      "Non-interactive (lossforge repl < script, or -e LINE...): only results are printed, on standard output;\n"
      "errors go to standard error and the session goes on. The exit status is then 1 when any line failed,\n"
      "0 otherwise (an interactive session always exits 0).\n");
  return {app, [options, colour] {
            const bool tty = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
            options->colour = *colour == "always" || (*colour == "auto" && tty);
            return repl::run_repl(*options);
          }};
}

}  // namespace lossforge::cli
