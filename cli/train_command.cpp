// `lossforge train`: runs the detector trainer, a separate executable
// (lossforge-train, cli/train_main.cpp) installed next to this one.
//
// Why a separate executable: the trainer links LibTorch, whose shared
// libraries cost seconds of start-up (dynamic relocations and operator
// registration; measured on the 2-core machine: a program that only links
// libtorch_cpu takes 0.3 s in the dynamic loader alone), which every other
// subcommand -- `check`, `eval`, the search's short-lived workers -- would pay.
// So `lossforge train ARGS...` replaces itself with `lossforge-train ARGS...`
// (execv: same process id, same exit status, signals reach the trainer).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli/command.hpp"

namespace lossforge::cli {
namespace {

constexpr const char* kTrainerName = "lossforge-train";

std::filesystem::path trainer_path() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return self.parent_path() / kTrainerName;
}

int exec_trainer(const std::vector<std::string>& args) {
  const std::filesystem::path path = trainer_path();
  if (path.empty() || access(path.c_str(), X_OK) != 0)
    throw UnavailableError("this build of lossforge has no detector trainer: " + std::string(kTrainerName) +
                           " is not next to it (build lossforge with LibTorch to get it)");
  std::vector<std::string> words = {kTrainerName};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  execv(path.c_str(), argv.data());
  throw UnavailableError("cannot run the trainer " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Command add_train_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "train", "Train a detector (FCOS) with losses from .loss files or formulas; evaluate it with COCO mAP");
  // Every word after `train` (--help included) goes to the trainer, which parses it.
  app->prefix_command();
  app->allow_extras();
  app->set_help_flag();
  return {app, [app] { return exec_trainer(app->remaining()); }};
}

}  // namespace lossforge::cli
