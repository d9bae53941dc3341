// `lossforge fmt`: print a .loss file in canonical form, or rewrite it in place.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.hpp"
#include "compiler/format.hpp"
#include "compiler/frontend.hpp"
#include "compiler/source.hpp"
#include "runtime/files.hpp"

namespace lossforge::cli {
namespace {

struct FmtArgs {
  std::string path;
  bool in_place = false;
  bool check = false;
};

// The file to format; "-" is standard input. Only regular files: a FIFO or a
// device could block or never end.
SourcePtr read_source(const std::string& path) {
  if (path == "-") {
    std::ostringstream text;
    text << std::cin.rdbuf();
    return SourceFile::from_text("<stdin>", std::move(text).str());
  }
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) throw InputError(path + ": no such file");
  if (!fs::is_regular_file(status)) throw InputError(path + ": not a regular file");
  if (fs::file_size(path, error) > limits::kMaxSourceBytes)
    throw InputError(path + ": larger than the " + std::to_string(limits::kMaxSourceBytes >> 20) +
                     " MiB a source file may have");
  return SourceFile::read(path);
}

int run_fmt(const FmtArgs& args) {
  if (args.in_place && args.path == "-") throw UsageError("fmt -i needs a file, not standard input");
  const SourcePtr source = read_source(args.path);
  const std::string formatted = format_source(source);
  const bool changed = formatted != source->text();
  if (args.check) {
    if (!changed) return exit_code::kOk;
    std::cerr << "lossforge: " << source->name() << " is not formatted (lossforge fmt -i rewrites it)\n";
    return exit_code::kFailure;
  }
  if (args.in_place) {
    // An unchanged file is left alone: no new inode, no new modification time.
    if (changed) write_file_atomic(args.path, formatted);
    return exit_code::kOk;
  }
  std::cout << formatted;
  return exit_code::kOk;
}

}  // namespace

Command add_fmt_command(CLI::App& parent) {
  auto args = std::make_shared<FmtArgs>();
  CLI::App* app = parent.add_subcommand("fmt", "Print a .loss file in canonical form (comments and let names kept)");
  app->add_option("file", args->path, "The .loss file; - reads standard input")->type_name("FILE")->required();
  CLI::Option* in_place =
      app->add_flag("-i,--in-place", args->in_place, "Rewrite the file (atomically, and only if it changes)");
  app->add_flag("--check", args->check, "Print nothing; exit 1 if the file is not in canonical form")
      ->excludes(in_place);
  app->footer("A file that does not parse is reported as file:line:col diagnostics and left untouched (exit 1).\n");
  return {app, [args] { return run_fmt(*args); }};
}

}  // namespace lossforge::cli
