#include "cli/repl/line_input.hpp"

#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli/repl/session.hpp"

#if LOSSFORGE_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

namespace lossforge::repl {
namespace {

class StreamReader : public LineReader {
 public:
  explicit StreamReader(std::istream& in) : in_(in) {}
  ReadResult read(const std::string&) override {
    ReadResult result;
    if (!std::getline(in_, result.text)) return result;
    if (!result.text.empty() && result.text.back() == '\r') result.text.pop_back();
    result.status = ReadStatus::line;
    return result;
  }

 private:
  std::istream& in_;
};

class ListReader : public LineReader {
 public:
  explicit ListReader(std::vector<std::string> lines) : lines_(std::move(lines)) {}
  ReadResult read(const std::string&) override {
    if (next_ >= lines_.size()) return {};
    return {ReadStatus::line, lines_[next_++]};
  }

 private:
  std::vector<std::string> lines_;
  size_t next_ = 0;
};

// Set by SIGINT while a line is being read; the read loop notices it.
volatile sig_atomic_t g_line_interrupted = 0;
volatile sig_atomic_t g_reading = 0;

void on_sigint(int) {
  if (g_reading)
    g_line_interrupted = 1;
  else
    g_interrupt_requested = true;
}

void install_sigint_handler() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  // SA_RESTART keeps output writes from failing with EINTR; select() is never
  // restarted (signal(7)), so the read loop still sees the interrupt at once.
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
}

#if LOSSFORGE_HAVE_READLINE

Completer* g_completer = nullptr;
std::vector<std::string> g_matches;
bool g_file_names = false;

char* next_match(const char* text, int state) {
  static size_t index;
  if (state == 0) {
    index = 0;
    g_file_names = false;
    std::string_view before(rl_line_buffer, size_t(rl_point));
    before.remove_suffix(std::min(before.size(), std::strlen(text)));
    auto found = (*g_completer)(before, text);
    if (!found) {
      g_file_names = true;
      g_matches.clear();
    } else {
      g_matches = std::move(*found);
    }
  }
  if (g_file_names) return rl_filename_completion_function(text, state);
  if (index >= g_matches.size()) return nullptr;
  const std::string& match = g_matches[index++];
  // NAME= wants its value right after it, not a space.
  if (!match.empty() && match.back() == '=') rl_completion_append_character = '\0';
  return strdup(match.c_str());
}

char** complete(const char* text, int, int) {
  rl_completion_append_character = ' ';
  rl_attempted_completion_over = 1;  // never fall back to file names unless asked
  return rl_completion_matches(text, next_match);
}

// Readline's callback interface, so that Ctrl-C can throw away the line being
// typed and the prompt comes back at once, as in a shell.
class ReadlineReader : public LineReader {
 public:
  ReadlineReader(std::filesystem::path history_file, Completer completer)
      : history_file_(std::move(history_file)), completer_(std::move(completer)) {
    g_completer = &completer_;
    rl_readline_name = "lossforge";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = const_cast<char*>(" \t\n\"'`@$><;|&{(,[=+-*/^)]}");
    rl_catch_signals = 0;  // our handler, installed below
    install_sigint_handler();
    using_history();
    if (!history_file_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(history_file_.parent_path(), ec);
      if (!std::filesystem::exists(history_file_, ec)) std::ofstream(history_file_).flush();  // append_history needs it
      read_history(history_file_.c_str());
    }
  }
  ~ReadlineReader() override {
    rl_callback_handler_remove();
    if (!history_file_.empty()) history_truncate_file(history_file_.c_str(), kHistoryLines);
    g_completer = nullptr;
  }

  ReadResult read(const std::string& prompt) override {
    result_ = {};
    done_ = false;
    g_line_interrupted = 0;
    g_reading = 1;
    current_ = this;
    rl_callback_handler_install(prompt.c_str(), on_line);
    while (!done_) {
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(STDIN_FILENO, &fds);
      const int ready = select(STDIN_FILENO + 1, &fds, nullptr, nullptr, nullptr);
      if (g_line_interrupted) {
        // Ctrl-C: drop what was typed, as bash does.
        g_line_interrupted = 0;
        rl_free_line_state();
        rl_callback_sigcleanup();
        rl_replace_line("", 0);
        rl_crlf();
        rl_callback_handler_remove();
        result_.status = ReadStatus::cancelled;
        break;
      }
      if (ready < 0) {
        if (errno == EINTR) continue;
        result_.status = ReadStatus::end_of_input;
        break;
      }
      rl_callback_read_char();
    }
    rl_callback_handler_remove();
    g_reading = 0;
    return result_;
  }

  void remember(const std::string& input) override {
    add_history(input.c_str());
    if (!history_file_.empty()) append_history(1, history_file_.c_str());
  }

 private:
  static constexpr int kHistoryLines = 2000;

  static void on_line(char* line) {
    ReadlineReader* self = current_;
    if (line == nullptr) {
      self->result_.status = ReadStatus::end_of_input;
      std::cout << '\n';  // Ctrl-D: leave the shell on a new line
    } else {
      self->result_ = {ReadStatus::line, line};
      std::free(line);
    }
    self->done_ = true;
    rl_callback_handler_remove();  // so the next prompt is not printed before the output
  }

  static inline ReadlineReader* current_ = nullptr;
  std::filesystem::path history_file_;
  Completer completer_;
  ReadResult result_;
  bool done_ = false;
};

#endif  // LOSSFORGE_HAVE_READLINE

// Without readline: plain lines from the terminal, Ctrl-C still cancels computations.
class PlainTerminalReader : public LineReader {
 public:
  PlainTerminalReader() { install_sigint_handler(); }
  ReadResult read(const std::string& prompt) override {
    std::cout << prompt << std::flush;
    g_reading = 1;
    ReadResult result = stream_.read(prompt);
    g_reading = 0;
    if (g_line_interrupted) {
      g_line_interrupted = 0;
      std::cin.clear();
      return {ReadStatus::cancelled, {}};
    }
    return result;
  }

 private:
  StreamReader stream_{std::cin};
};

}  // namespace

std::unique_ptr<LineReader> terminal_reader(const std::filesystem::path& history_file, Completer completer) {
#if LOSSFORGE_HAVE_READLINE
  return std::make_unique<ReadlineReader>(history_file, std::move(completer));
#else
  (void)history_file;
  (void)completer;
  return std::make_unique<PlainTerminalReader>();
#endif
}

std::unique_ptr<LineReader> stream_reader(std::istream& in) { return std::make_unique<StreamReader>(in); }
std::unique_ptr<LineReader> list_reader(std::vector<std::string> lines) {
  return std::make_unique<ListReader>(std::move(lines));
}

std::filesystem::path default_history_file() {
  if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data)
    return std::filesystem::path(data) / "lossforge" / "repl_history";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".local" / "share" / "lossforge" / "repl_history";
  return {};
}

}  // namespace lossforge::repl
