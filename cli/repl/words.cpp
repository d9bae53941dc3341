#include "cli/repl/words.hpp"

#include <cctype>

namespace lossforge::repl {

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false, quoted = false;
  int depth = 0;
  for (char c : line) {
    if (quoted) {
      if (c == '"')
        quoted = false;
      else
        word += c;
      continue;
    }
    if (c == '"') {
      quoted = in_word = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) && depth == 0) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    if (c == '[') ++depth;
    if (c == ']' && depth > 0) --depth;
    if (!std::isspace(static_cast<unsigned char>(c)) || depth == 0) word += c;
    in_word = true;
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

bool has_open_bracket(std::string_view text) {
  int depth = 0;
  bool comment = false, quoted = false;
  for (char c : text) {
    if (comment) {
      comment = c != '\n';
      continue;
    }
    if (quoted) {
      quoted = c != '"';
      continue;
    }
    switch (c) {
      case '#': comment = true; break;
      case '"': quoted = true; break;
      case '(': case '[': case '{': ++depth; break;
      case ')': case ']': case '}': --depth; break;
      default: break;
    }
  }
  return depth > 0;
}

}  // namespace lossforge::repl
