// Source text and positions in it. Every diagnostic points into a SourceFile.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lossforge {

// A 1-based line and column; columns count Unicode code points, as the lexer does.
struct SourceLoc {
  uint32_t line = 0;
  uint32_t col = 0;
  friend bool operator==(const SourceLoc&, const SourceLoc&) = default;
};

// A half-open range [begin, end) on one or more lines.
struct SourceRange {
  SourceLoc begin;
  SourceLoc end;
};

class SourceFile {
 public:
  SourceFile(std::string name, std::string text);

  // Reads a file; throws InputError naming the path when it cannot, when it is
  // not a regular file, or when it is larger than max_bytes.
  static std::shared_ptr<const SourceFile> read(const std::string& path, size_t max_bytes = SIZE_MAX);
  static std::shared_ptr<const SourceFile> from_text(std::string name, std::string text);

  const std::string& name() const { return name_; }
  const std::string& text() const { return text_; }
  size_t line_count() const { return line_starts_.size(); }
  // The text of a 1-based line, without its line break.
  std::string_view line(uint32_t line) const;

 private:
  std::string name_;
  std::string text_;
  std::vector<size_t> line_starts_;
};

using SourcePtr = std::shared_ptr<const SourceFile>;

}  // namespace lossforge
