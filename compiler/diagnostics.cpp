#include "compiler/diagnostics.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace lossforge {
namespace {

// Byte offset of a 1-based code-point column in a UTF-8 line.
size_t byte_offset(std::string_view line, uint32_t col) {
  size_t i = 0;
  for (uint32_t c = 1; c < col && i < line.size(); ++c) {
    ++i;
    while (i < line.size() && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

}  // namespace

std::string quote_token(std::string_view text) {
  std::string out = "'";
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

std::string render(const Diagnostic& d, const SourceFile& file) {
  const SourceLoc at = d.range.begin;
  std::string out = file.name() + ":" + std::to_string(at.line) + ":" + std::to_string(at.col) +
                    ": error: " + d.message + "\n";
  std::string_view line = file.line(at.line);
  // Very long lines (minified or generated text) are shown around the caret only.
  constexpr size_t kWindow = 100;
  size_t caret = byte_offset(line, at.col);
  size_t shown_from = caret > kWindow ? caret - kWindow / 2 : 0;
  while (shown_from > 0 && shown_from < line.size() &&
         (static_cast<unsigned char>(line[shown_from]) & 0xC0) == 0x80)
    --shown_from;
  std::string_view shown = line.substr(shown_from, std::min(line.size() - shown_from, 2 * kWindow));
  std::string number = std::to_string(at.line);
  std::string gutter(number.size(), ' ');
  std::string prefix = shown_from > 0 ? "..." : "";
  out += " " + number + " | " + prefix + std::string(shown) + "\n";
  std::string marks(prefix.size(), ' ');
  for (size_t i = 0; i < caret - shown_from && i < shown.size(); ++i)
    if ((static_cast<unsigned char>(shown[i]) & 0xC0) != 0x80) marks += shown[i] == '\t' ? '\t' : ' ';
  marks += '^';
  if (d.range.end.line == at.line && d.range.end.col > at.col + 1)
    marks += std::string(std::min<uint32_t>(d.range.end.col - at.col - 1, 200), '~');
  out += " " + gutter + " | " + marks + "\n";
  if (!d.note.empty()) out += " " + gutter + " = note: " + d.note + "\n";
  return out;
}

static std::string render_all(const SourceFile& file, const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) out += render(d, file);
  if (diagnostics.size() >= DiagnosticSink::kMaxErrors)
    out += file.name() + ": too many errors; stopped after " + std::to_string(diagnostics.size()) + "\n";
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

CompileError::CompileError(SourcePtr file, std::vector<Diagnostic> diagnostics)
    : Error(render_all(*file, diagnostics)), file_(std::move(file)), diagnostics_(std::move(diagnostics)) {}

void DiagnosticSink::error(SourceRange range, std::string message, std::string note) {
  if (full()) return;
  diagnostics_.push_back({range, std::move(message), std::move(note)});
}

void DiagnosticSink::throw_if_errors() const {
  if (!diagnostics_.empty()) throw CompileError(file_, diagnostics_);
}

}  // namespace lossforge
