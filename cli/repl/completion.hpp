// Tab completion: what may come next at a point of a REPL line.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/repl/session.hpp"

namespace lossforge::repl {

// The candidates for `word`, the partial word before the cursor, given the
// text of the line before it: commands after ':', presets after :pset, losses,
// their inputs and params (as NAME=) after :eval / :plot, back-end targets after
// :emit, functions (the operator table), keywords, losses and the preset's names
// in definitions. Sorted, unique, all starting with `word`. nullopt: complete
// file names (after :load and :save).
std::optional<std::vector<std::string>> completions(const Session& session, std::string_view before,
                                                    std::string_view word);

}  // namespace lossforge::repl
