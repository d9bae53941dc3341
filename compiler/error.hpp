// The one error convention of lossforge.
//
// Library code reports a user-facing failure (bad DSL text, bad inputs, a
// missing back end) by throwing a subclass of lossforge::Error whose what() is
// a complete, one-line-first message that names what and where. Boundaries
// (the CLI, the REPL, the LibTorch op) catch Error, print what() and fail
// cleanly. Anything else that escapes is a bug in lossforge.
#pragma once

#include <stdexcept>
#include <string>

namespace lossforge {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input data: wrong shapes, missing inputs, malformed JSON, unknown params.
class InputError : public Error {
 public:
  using Error::Error;
};

// A back end that this build or this machine does not have.
class UnavailableError : public Error {
 public:
  using Error::Error;
};

}  // namespace lossforge
