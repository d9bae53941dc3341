// The boundary of the error convention (compiler/error.hpp), shared by the
// `lossforge` and `lossforge-train` executables: Error is the user's problem,
// reported in one line; anything else is a lossforge bug.
#pragma once

#include <functional>

namespace lossforge::cli {

// Runs `body` and returns its exit status, or turns what it throws into a
// one-line message on stderr and the status of cli/command.hpp's exit_code.
int run_reporting_errors(const std::function<int()>& body);

}  // namespace lossforge::cli
