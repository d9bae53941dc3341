// Numbers as text on the command line and in JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lossforge::cli {

// The shortest text that reads back as the same value of T (std::to_chars):
// 0.1f prints as 0.1, not 0.10000000149011612. NaN and infinities print as
// nan, inf and -inf.
template <class T>
std::string shortest(T value);

// A whole string as a finite double ("0.25", "-2", "1e-7"); nullopt otherwise.
std::optional<double> parse_finite(std::string_view text);

}  // namespace lossforge::cli
