// `lossforge fmt`: canonical text for a .loss file that keeps what the author
// chose: losses in order, let and param names, comments and paragraph breaks.
// Expressions are reprinted from the IR (minimal parentheses, canonical numbers,
// earlier lets by name), so formatting is idempotent and never changes meaning.
#pragma once

#include <string>

#include "compiler/source.hpp"

namespace lossforge {

// Throws CompileError when the file does not parse or check.
std::string format_source(const SourcePtr& source);

}  // namespace lossforge
