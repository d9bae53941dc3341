#include "compiler/frontend.hpp"

#include <filesystem>

#include "compiler/ast.hpp"
#include "compiler/lower.hpp"

namespace lossforge {

Module load_module(const SourcePtr& source) { return lower_file(parse_file(source)); }

Loss load_formula(const SourcePtr& source, const Preset& preset, std::string name) {
  return lower_formula(parse_formula(source), preset, std::move(name));
}

SourcePtr source_from_argument(const std::string& argument) {
  std::error_code ec;
  if (std::filesystem::exists(argument, ec)) return SourceFile::read(argument, limits::kMaxSourceBytes);
  // Something that looks like a path but is not there is a missing file, not a formula.
  bool looks_like_path = argument.ends_with(".loss") || argument.starts_with("/") ||
                         argument.starts_with("./") || argument.starts_with("../");
  if (looks_like_path) throw InputError(argument + ": no such file");
  return SourceFile::from_text("<arg>", argument);
}

}  // namespace lossforge
