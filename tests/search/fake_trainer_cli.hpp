// The command-line fixture of the search tests: a fresh folder with an empty
// data/ and the test's fake trainer script (a shell script standing in for
// `lossforge train`), and lossforge run with its output captured; and the
// file readers both search test files use.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace lossforge::search_test {

inline std::string text_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class FakeTrainerCli : public ::testing::Test {
 protected:
  FakeTrainerCli(std::filesystem::path dir, const char* trainer_script)
      : dir_(std::move(dir)), script_(trainer_script) {}

  void SetUp() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "data");
    trainer_ = (dir_ / "fake-train.sh").string();
    std::ofstream(trainer_) << script_;
    ::chmod(trainer_.c_str(), 0755);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs lossforge with `env` prefixed; the wait status.
  int lossforge(const std::string& env, const std::string& args) {
    const std::string command = env + " " + LOSSFORGE_CLI + " " + args + " > " + (dir_ / "out.txt").string() + " 2>&1";
    return std::system(command.c_str());
  }
  std::string output() const { return text_of(dir_ / "out.txt"); }

  std::filesystem::path dir_;
  std::string trainer_;  // the fake trainer's path

 private:
  const char* script_;
};

}  // namespace lossforge::search_test
