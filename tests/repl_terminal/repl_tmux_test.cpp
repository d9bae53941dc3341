// `lossforge repl` on a real terminal, driven under tmux the way a person
// types: tab completion, multi-line input, Ctrl-C, up-arrow history (also
// across sessions, from the history file) and a terminal plot.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "tests/repl/repl_support.hpp"

namespace lossforge::repl_test {
namespace {

std::string output_of(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

// One tmux server of its own (a socket named after this process), one window
// running the REPL with HOME and XDG_DATA_HOME in `home`.
class Terminal {
 public:
  explicit Terminal(const std::filesystem::path& home) : socket_("lossforge-test-" + std::to_string(getpid())) {
    const std::string command = "env HOME=" + shell_quote(home.string()) +
                                " XDG_DATA_HOME=" + shell_quote((home / "data").string()) + " TERM=xterm " +
                                shell_quote(LOSSFORGE_CLI) + " repl";
    tmux("-f /dev/null new-session -d -s repl -x 100 -y 60 " + shell_quote(command));
  }
  ~Terminal() { tmux("kill-server"); }

  void type(const std::string& text) { tmux("send-keys -t repl -l " + shell_quote(text)); }
  void key(const std::string& name) { tmux("send-keys -t repl " + name); }
  std::string screen() { return output_of("tmux -L " + socket_ + " capture-pane -p -t repl -S -300 2>/dev/null"); }
  bool running() { return std::system(("tmux -L " + socket_ + " has-session -t repl 2>/dev/null").c_str()) == 0; }

  // The last non-empty line of the screen.
  std::string last_line() {
    const std::string text = screen();
    size_t end = text.find_last_not_of("\n ");
    if (end == std::string::npos) return "";
    const size_t start = text.rfind('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
  }

  // Polls until `done` holds for the screen, or 15 s pass.
  bool wait_for(const std::function<bool(const std::string&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(screen())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  bool wait_for_text(const std::string& text, size_t times = 1) {
    return wait_for([&](const std::string& s) {
      size_t n = 0;
      for (size_t at = s.find(text); at != std::string::npos; at = s.find(text, at + 1)) ++n;
      return n >= times;
    });
  }
  bool wait_for_last_line(const std::string& line) {
    return wait_for([&](const std::string&) { return last_line() == line; });
  }

 private:
  void tmux(const std::string& args) { std::system(("tmux -L " + socket_ + " " + args + " >/dev/null 2>&1").c_str()); }
  std::string socket_;
};

TEST(ReplTerminal, CompletionHistoryCancelAndPlotAsTyped) {
  TempDir home;
  {
    Terminal t(home.path());
    ASSERT_TRUE(t.wait_for_last_line("lf>")) << t.screen();
    t.type(":pset binary_cls");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("formulas now read X, Q, PY, NY")) << t.screen();
    t.type("Neg(Log(Sig(X)))");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("defined f1(pred X: real, Q: real, PY: real, NY: real)")) << t.screen();

    // Tab completes the command, then an input name with its '='.
    t.type(":ev");
    t.key("Tab");
    ASSERT_TRUE(t.wait_for_last_line("lf> :eval")) << t.screen();
    t.type("f1 Q");
    t.key("Tab");
    ASSERT_TRUE(t.wait_for_last_line("lf> :eval f1 Q=")) << t.screen();
    t.type("1 X=0.5 PY=1 NY=0");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("  d/dX = ")) << t.screen();

    // An open parenthesis continues the input on the next line.
    t.type("loss sq(pred x: real,");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_last_line("...")) << t.screen();
    t.type("y: real) = (x - y)^2");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("defined sq(pred x: real, y: real)")) << t.screen();

    // Ctrl-C throws the line away and gives a fresh prompt.
    t.type("this line is never run");
    t.key("C-c");
    ASSERT_TRUE(t.wait_for_last_line("lf>")) << t.screen();

    // Up arrow: the block, then the :eval before it; Enter runs it again.
    t.key("Up");
    ASSERT_TRUE(t.wait_for_last_line("lf> loss sq(pred x: real, y: real) = (x - y)^2")) << t.screen();
    t.key("Up");
    ASSERT_TRUE(t.wait_for_last_line("lf> :eval f1 Q=1 X=0.5 PY=1 NY=0")) << t.screen();
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("  d/dX = ", 2)) << t.screen();

    // Ctrl-C stops a running command; the session goes on.
    t.type(":time sq rows=5000000");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("sq: loss and gradients")) << t.screen();
    t.key("C-c");
    ASSERT_TRUE(t.wait_for_text("interrupted")) << t.screen();
    ASSERT_TRUE(t.wait_for_last_line("lf>")) << t.screen();

    t.type(":plot f1 X in [-6, 6] Q=1 PY=1 NY=0");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for_text("df1/dX")) << t.screen();
    const std::string screen = t.screen();
    EXPECT_NE(screen.find("f1 against X"), std::string::npos) << screen;
    EXPECT_NE(screen.find("└"), std::string::npos) << screen;
    size_t braille = 0;
    for (size_t at = screen.find("\xe2\xa0"); at != std::string::npos; at = screen.find("\xe2\xa0", at + 1)) ++braille;
    EXPECT_GE(braille, 10u) << screen;
    EXPECT_EQ(screen.find("error"), std::string::npos) << screen;
    EXPECT_EQ(screen.find("llvm    compile"), std::string::npos) << "the interrupted :time went on: " << screen;

    t.type(":quit");
    t.key("Enter");
    ASSERT_TRUE(t.wait_for([&](const std::string&) { return !t.running(); })) << "the REPL did not leave";
  }
  const std::string history = read_file(home.path() / "data" / "lossforge" / "repl_history");
  EXPECT_NE(history.find(":pset binary_cls\n"), std::string::npos) << history;
  EXPECT_NE(history.find(":plot f1 X in [-6, 6] Q=1 PY=1 NY=0\n"), std::string::npos) << history;
  EXPECT_EQ(history.find("never run"), std::string::npos) << history;

  // A new session recalls the last one's lines; Ctrl-D leaves.
  Terminal again(home.path());
  ASSERT_TRUE(again.wait_for_last_line("lf>")) << again.screen();
  again.key("Up");
  again.key("Up");
  ASSERT_TRUE(again.wait_for_last_line("lf> :plot f1 X in [-6, 6] Q=1 PY=1 NY=0")) << again.screen();
  again.key("C-u");
  again.key("C-d");
  ASSERT_TRUE(again.wait_for([&](const std::string&) { return !again.running(); })) << again.screen();
}

}  // namespace
}  // namespace lossforge::repl_test
