// Splitting a command line into words: whitespace separates words except
// inside brackets ([-6, 6] is one word) and double quotes ("my file.png").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lossforge::repl {

std::vector<std::string> split_words(std::string_view line);

// Whether `text` leaves a bracket ( [ { open (outside comments and quotes):
// then the input continues on the next line.
bool has_open_bracket(std::string_view text);

}  // namespace lossforge::repl
