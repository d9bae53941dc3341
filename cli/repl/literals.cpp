#include "cli/repl/literals.hpp"

#include <cctype>
#include <cmath>

#include "cli/numbers.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/error.hpp"

namespace lossforge::repl {
namespace {

class LiteralParser {
 public:
  LiteralParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  Literal parse() {
    Literal value = item(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected " + quote_token(text_.substr(pos_, 1)));
    return value;
  }

 private:
  static constexpr int kMaxDepth = 4;

  Literal item(int depth) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '[') {
      if (depth >= kMaxDepth) fail("lists nest at most " + std::to_string(kMaxDepth) + " deep");
      ++pos_;
      Literal list;
      list.is_list = true;
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return list;
      }
      for (;;) {
        list.items.push_back(item(depth + 1));
        skip_space();
        if (pos_ >= text_.size()) fail("missing ']'");
        if (text_[pos_] == ']') {
          ++pos_;
          return list;
        }
        if (text_[pos_] != ',') fail("expected ',' or ']' at " + quote_token(text_.substr(pos_, 1)));
        ++pos_;
      }
    }
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != ']' && text_[pos_] != '[' &&
           !std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
    const std::string_view word = text_.substr(start, pos_ - start);
    if (word.empty()) fail("expected a number");
    const auto number = cli::parse_finite(word);
    if (!number) fail(quote_token(word) + " is not a finite number");
    Literal value;
    value.number = *number;
    return value;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  [[noreturn]] void fail(const std::string& why) {
    throw InputError(what_ + " = " + quote_token(text_) + ": " + why);
  }

  std::string_view text_;
  std::string what_;
  size_t pos_ = 0;
};

bool all_numbers(const Literal& list) {
  for (const Literal& item : list.items)
    if (item.is_list) return false;
  return true;
}

std::vector<double> numbers(const Literal& list) {
  std::vector<double> out;
  for (const Literal& item : list.items) out.push_back(item.number);
  return out;
}

// The rows of one input: a real takes numbers, real[C] and box take rows of numbers.
Array<double> to_array(const LossInput& input, const Literal& value) {
  const std::string what = "'" + input.name + "' (" + input.type.str() + ")";
  if (input.type.is_real()) {
    if (!value.is_list) return Array<double>(1, 1, {value.number});
    if (!all_numbers(value)) throw InputError(what + " takes a number, or [a, b, ...] for several rows");
    return Array<double>(value.items.size(), 1, numbers(value));
  }
  const size_t fixed_width = input.type.is_box() ? 4 : 0;
  const std::string example = input.type.is_box() ? "[x1, y1, x2, y2]" : "[a, b, c]";
  if (!value.is_list) throw InputError(what + " takes a row like " + example + ", not a single number");
  std::vector<const Literal*> rows;
  if (all_numbers(value)) {
    rows.push_back(&value);
  } else {
    for (const Literal& row : value.items) {
      if (!row.is_list || !all_numbers(row))
        throw InputError(what + " takes " + example + " or a list of such rows");
      rows.push_back(&row);
    }
  }
  const size_t width = fixed_width ? fixed_width : rows.front()->items.size();
  if (width == 0) throw InputError(what + " needs at least one value per row");
  Array<double> array(rows.size(), width);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r]->items.size() != width)
      throw InputError(what + ": row " + std::to_string(r) + " has " + std::to_string(rows[r]->items.size()) +
                       " values, expected " + std::to_string(width) + (fixed_width ? " (x1, y1, x2, y2)" : ""));
    for (size_t c = 0; c < width; ++c) array.row(r)[c] = rows[r]->items[c].number;
  }
  return array;
}

}  // namespace

Literal parse_literal(std::string_view text, const std::string& what) { return LiteralParser(text, what).parse(); }

bool is_assignment(std::string_view word) {
  const size_t equals = word.find('=');
  if (equals == std::string_view::npos || equals == 0) return false;
  for (char c : word.substr(0, equals))
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

void add_assignment(std::string_view word, Assignments& into) {
  if (!is_assignment(word)) throw InputError("expected NAME=VALUE, got " + quote_token(word));
  const size_t equals = word.find('=');
  const std::string name(word.substr(0, equals));
  into[name] = parse_literal(word.substr(equals + 1), name);
}

std::string input_list(const Loss& loss) {
  std::string text;
  for (const LossInput& input : loss.inputs) text += (text.empty() ? "" : ", ") + input.name + ": " + input.type.str();
  return text;
}

LossArguments loss_arguments(const Loss& loss, const Assignments& values) {
  LossArguments args;
  for (const LossParam& param : loss.params) args.params.push_back(param.value);
  for (const auto& [name, value] : values) {
    if (loss.find_input(name)) continue;
    if (auto p = loss.find_param(name)) {
      if (value.is_list) throw InputError("param '" + name + "' takes a single number");
      args.params[*p] = value.number;
      continue;
    }
    std::string params;
    for (const LossParam& param : loss.params) params += ", " + param.name;
    throw InputError("'" + loss.name + "' has no input or param named " + quote_token(name) + " (inputs: " +
                     input_list(loss) + (params.empty() ? "" : "; params: " + params.substr(2)) + ")");
  }
  std::string missing;
  for (const LossInput& input : loss.inputs) {
    const auto it = values.find(input.name);
    if (it == values.end()) {
      missing += (missing.empty() ? "" : ", ") + input.name + ": " + input.type.str();
      continue;
    }
    args.inputs.push_back(to_array(input, it->second));
  }
  if (!missing.empty())
    throw InputError("'" + loss.name + "' needs a value for " + missing + " (e.g. x=0.5, v=[1, 0, 0], p=[0, 0, 10, 10])");
  // One-row inputs repeat to the longest; any other mismatch is an error.
  for (const Array<double>& a : args.inputs) args.rows = std::max(args.rows, a.rows);
  for (size_t i = 0; i < args.inputs.size(); ++i) {
    Array<double>& a = args.inputs[i];
    if (a.rows == args.rows) continue;
    if (a.rows != 1)
      throw InputError("'" + loss.inputs[i].name + "' has " + std::to_string(a.rows) + " rows but another input has " +
                       std::to_string(args.rows) + " (one row repeats; other counts must agree)");
    Array<double> repeated(args.rows, a.width);
    for (size_t r = 0; r < args.rows; ++r) std::copy(a.data.begin(), a.data.end(), repeated.row(r));
    a = std::move(repeated);
  }
  return args;
}

}  // namespace lossforge::repl
