// `lossforge repl`: an interactive shell for trying losses (issue 5).
//
// Interactive on a terminal (banner, prompt, readline editing, history, tab
// completion, colour); non-interactive when standard input is not a terminal or
// lines come from -e: then only results are printed (no banner, no prompt, no
// "defined ..." lines), errors go to standard error, and the session carries on
// after them.
#pragma once

#include <string>
#include <vector>

namespace lossforge::repl {

struct ReplOptions {
  std::vector<std::string> commands;  // -e lines; when given, standard input is not read
  bool no_history = false;
  bool colour = false;               // ANSI colour in terminal plots (interactive default: on)
};

// Runs the session to its end (:quit, end of input). Returns 0, or 1 when any
// input failed in a non-interactive session.
int run_repl(const ReplOptions& options);

}  // namespace lossforge::repl
