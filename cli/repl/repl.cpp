#include "cli/repl/repl.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "cli/repl/commands.hpp"
#include "cli/repl/completion.hpp"
#include "cli/repl/line_input.hpp"
#include "cli/repl/session.hpp"
#include "cli/repl/words.hpp"

namespace lossforge::repl {
namespace {

constexpr const char* kPrompt = "lf> ";
constexpr const char* kContinuation = "... ";

int terminal_columns() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS"))
    if (const int n = std::atoi(columns); n > 0) return n;
  return 80;
}

// History holds one entry per input: a block's lines joined by spaces when
// that reads the same (no comments), so up-arrow brings back the whole block.
std::string history_entry(const std::string& input) {
  if (input.find('#') != std::string::npos) return input;
  std::string entry = input;
  for (char& c : entry)
    if (c == '\n') c = ' ';
  return entry;
}

}  // namespace

int run_repl(const ReplOptions& options) {
  const bool interactive = options.commands.empty() && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  Session session(std::cout, interactive ? std::cout : std::cerr);
  session.interactive = interactive;
  session.colour = options.colour;
  session.columns = terminal_columns();

  std::unique_ptr<LineReader> reader;
  if (!options.commands.empty()) {
    reader = list_reader(options.commands);
  } else if (interactive) {
    reader = terminal_reader(options.no_history ? std::filesystem::path() : default_history_file(),
                             [&session](std::string_view before, std::string_view word) {
                               return completions(session, before, word);
                             });
    std::cout << "lossforge repl: type a loss or a formula, :help for commands, Ctrl-D to leave.\n";
  } else {
    reader = stream_reader(std::cin);
  }

  bool any_failed = false;
  uint32_t line_number = 0;
  for (;;) {
    std::string input;
    uint32_t first_line = line_number + 1;
    bool cancelled = false, ended = false;
    // An input continues while a bracket is open.
    do {
      if (interactive) session.columns = terminal_columns();  // the window may have been resized
      ReadResult read = reader->read(input.empty() ? kPrompt : kContinuation);
      if (read.status == ReadStatus::cancelled) {
        cancelled = true;
        break;
      }
      if (read.status == ReadStatus::end_of_input) {
        ended = true;
        break;
      }
      ++line_number;
      input += (input.empty() ? "" : "\n") + read.text;
    } while (has_open_bracket(input));
    if (cancelled) {
      line_number = first_line - 1 + uint32_t(std::count(input.begin(), input.end(), '\n') + !input.empty());
      continue;
    }
    if (input.find_first_not_of(" \t\n") == std::string::npos) {
      if (ended) break;
      continue;
    }
    if (interactive) reader->remember(history_entry(input));
    g_interrupt_requested = false;
    const Outcome outcome = run_input(session, input, first_line);
    g_interrupt_requested = false;
    if (outcome == Outcome::failed) any_failed = true;
    if (outcome == Outcome::quit || ended) break;
  }
  std::cout.flush();
  return !interactive && any_failed ? 1 : 0;
}

}  // namespace lossforge::repl
