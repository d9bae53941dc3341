// The subcommands of the `lossforge` executable and what they share: exit
// statuses and the error for a command line that parses but makes no sense.
#pragma once

#include <functional>

#include "compiler/error.hpp"

namespace CLI {
class App;
}

namespace lossforge::cli {

// Exit statuses, the same for every subcommand (listed in `lossforge --help`).
namespace exit_code {
inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;    // bad input, compile errors, a back end this build lacks
inline constexpr int kUsage = 2;      // a command line that cannot be carried out
inline constexpr int kNonFinite = 3;  // NaN or infinity: `eval`'s result, a training's loss
}  // namespace exit_code

// Options that parse but contradict each other or the loss: a formula without
// --pset, an unknown --loss or --param name. Exits with kUsage.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A subcommand registered on the parser. `run` executes it with the parsed
// options and returns the exit status; it reports failures by throwing Error.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_eval_command(CLI::App& parent);
Command add_check_command(CLI::App& parent);
Command add_fmt_command(CLI::App& parent);
Command add_emit_command(CLI::App& parent);
Command add_compile_command(CLI::App& parent);
Command add_simplify_command(CLI::App& parent);
Command add_grad_command(CLI::App& parent);
Command add_repl_command(CLI::App& parent);
Command add_data_command(CLI::App& parent);
Command add_train_command(CLI::App& parent);  // runs lossforge-train (cli/train_main.cpp)
Command add_search_command(CLI::App& parent);  // cli/search_command.cpp
Command add_bench_command(CLI::App& parent);

}  // namespace lossforge::cli
