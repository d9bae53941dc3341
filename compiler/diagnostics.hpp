// Compiler diagnostics: what went wrong, where, and what was expected.
//
// Rendered like a C compiler's:
//   focal.loss:3:14: error: unknown function 'sigmod'; did you mean 'sigmoid'?
//       3 |   let p = sigmod(x)
//         |           ^~~~~~
// The front end collects every error it can find in one run and throws them
// together as a CompileError.
#pragma once

#include <string>
#include <vector>

#include "compiler/error.hpp"
#include "compiler/source.hpp"

namespace lossforge {

struct Diagnostic {
  SourceRange range;  // range.end may equal range.begin: a single caret
  std::string message;
  std::string note;  // optional second line ("note: 'x' is declared here")
};

// Renders one diagnostic with its source line and caret.
std::string render(const Diagnostic& d, const SourceFile& file);

class CompileError : public Error {
 public:
  CompileError(SourcePtr file, std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  const SourceFile& file() const { return *file_; }

 private:
  SourcePtr file_;
  std::vector<Diagnostic> diagnostics_;
};

// Collects diagnostics during one front-end run; stops a run that produces too many.
class DiagnosticSink {
 public:
  static constexpr size_t kMaxErrors = 20;
  explicit DiagnosticSink(SourcePtr file) : file_(std::move(file)) {}

  void error(SourceRange range, std::string message, std::string note = {});
  bool empty() const { return diagnostics_.empty(); }
  bool full() const { return diagnostics_.size() >= kMaxErrors; }
  // Throws CompileError if anything was reported.
  void throw_if_errors() const;
  const SourcePtr& file() const { return file_; }

 private:
  SourcePtr file_;
  std::vector<Diagnostic> diagnostics_;
};

// Escapes a token's text for a message: control characters and quotes shown as \xNN.
std::string quote_token(std::string_view text);

}  // namespace lossforge
