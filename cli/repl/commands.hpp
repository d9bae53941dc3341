// The REPL's commands (:eval, :plot, ...) as one table, and running one input:
// a command line or loss definitions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/repl/session.hpp"

namespace lossforge::repl {

using Words = std::vector<std::string>;  // the words after the command name

struct CommandSpec {
  std::string_view name;     // without the colon: "eval"
  std::string_view usage;    // ":eval [LOSS] NAME=VALUE..."
  std::string_view summary;  // one line for :help
  std::string_view details;  // more lines for :help NAME (may be empty)
  void (*run)(Session&, const Words&);
};

std::span<const CommandSpec> repl_commands();
// By full name or unique prefix (":ev" runs :eval); nullptr otherwise.
const CommandSpec* find_command(std::string_view name);

// What the caller should do after one input.
enum class Outcome { ok, failed, quit };

// Runs one input typed starting at session line `first_line`: a command when
// it starts with ':', otherwise loss definitions. Every failure is printed to
// the session's error stream (compile errors as `lossforge check` prints them)
// and reported as Outcome::failed; nothing escapes.
Outcome run_input(Session& session, const std::string& input, uint32_t first_line);

// The handlers, one file per group.
void command_eval(Session&, const Words&);      // eval_commands.cpp
void command_time(Session&, const Words&);
void command_check(Session&, const Words&);
void command_grad(Session&, const Words&);      // code_commands.cpp
void command_simplify(Session&, const Words&);
void command_emit(Session&, const Words&);
void command_plot(Session&, const Words&);      // plot_command.cpp

// The loss a command names in its first word, or the latest one when the first
// word is not a defined loss's name (then `used` is false).
const Definition& loss_argument(Session& session, const Words& words, bool& used);

// Thrown by :quit (caught by run_input).
struct QuitRequest {};

}  // namespace lossforge::repl
