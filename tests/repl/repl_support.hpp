// Running `lossforge repl` from tests: a script on standard input (or -e
// lines), its standard output, standard error and exit status.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace lossforge::repl_test {

struct ReplRun {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Single quotes for the shell.
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A fresh directory under the system's temporary directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lossforge-repl-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// `lossforge repl ARGS < script` with HOME and XDG_DATA_HOME in a temporary
// directory and COLUMNS=columns; killed after 60 s.
inline ReplRun run_repl(const std::string& script, const std::vector<std::string>& args = {}, int columns = 80) {
  TempDir dir;
  const auto in = dir.path() / "in", out = dir.path() / "out", err = dir.path() / "err";
  std::ofstream(in) << script;
  std::string command = "cd " + shell_quote(dir.path().string()) + " && HOME=" + shell_quote(dir.path().string()) +
                        " XDG_DATA_HOME=" + shell_quote((dir.path() / "data").string()) +
                        " COLUMNS=" + std::to_string(columns) + " timeout 60 " + shell_quote(LOSSFORGE_CLI) + " repl";
  for (const std::string& a : args) command += " " + shell_quote(a);
  command += " < " + shell_quote(in.string()) + " > " + shell_quote(out.string()) + " 2> " + shell_quote(err.string());
  const int status = std::system(command.c_str());
  ReplRun run;
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = read_file(out);
  run.err = read_file(err);
  return run;
}

inline std::ostream& operator<<(std::ostream& os, const ReplRun& run) {
  return os << "status " << run.status << "\n--- stdout\n" << run.out << "--- stderr\n" << run.err;
}

}  // namespace lossforge::repl_test
