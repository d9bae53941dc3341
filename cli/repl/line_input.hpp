// Where the REPL's lines come from: a terminal (GNU readline: editing,
// persistent history, tab completion, Ctrl-C clearing the line), a stream
// (a script on standard input), or a list (-e arguments).
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lossforge::repl {

enum class ReadStatus { line, end_of_input, cancelled };

struct ReadResult {
  ReadStatus status = ReadStatus::end_of_input;
  std::string text;  // the line, without its line break
};

class LineReader {
 public:
  virtual ~LineReader() = default;
  virtual ReadResult read(const std::string& prompt) = 0;
  // Records a complete input (several lines for a block) in the history.
  virtual void remember(const std::string&) {}
};

// Completion candidates for (text before the word, the word); nullopt: file names.
using Completer = std::function<std::optional<std::vector<std::string>>(std::string_view, std::string_view)>;

// The terminal, through readline when this lossforge has it (a plain line
// reader otherwise). History is read from and appended to `history_file`
// (empty: no history file). Installs a SIGINT handler that cancels the line
// being typed, or sets g_interrupt_requested while a command runs.
std::unique_ptr<LineReader> terminal_reader(const std::filesystem::path& history_file, Completer completer);
std::unique_ptr<LineReader> stream_reader(std::istream& in);
std::unique_ptr<LineReader> list_reader(std::vector<std::string> lines);

// $XDG_DATA_HOME/lossforge/repl_history, or ~/.local/share/lossforge/repl_history;
// empty when neither variable is set.
std::filesystem::path default_history_file();

}  // namespace lossforge::repl
