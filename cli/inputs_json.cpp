#include "cli/inputs_json.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/numbers.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/error.hpp"

namespace lossforge::cli {
namespace {

using nlohmann::json;

std::string input_names(const Loss& loss) {
  std::string names;
  for (const LossInput& input : loss.inputs) names += (names.empty() ? "" : ", ") + input.name;
  return names;
}

std::string_view dtype_name(float) { return "f32"; }
std::string_view dtype_name(double) { return "f64"; }

// The declared width of real[3]; nullopt for a named width such as real[C].
std::optional<size_t> numeric_width(const Type& type) {
  std::string_view name = type.width().str();
  size_t width = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), width);
  if (error != std::errc() || end != name.data() + name.size()) return std::nullopt;
  return width;
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag, on one line.
std::string plain_message(const json::exception& e) {
  std::string message = e.what();
  if (auto bracket = message.find("] "); message.starts_with("[json.exception") && bracket != std::string::npos)
    message.erase(0, bracket + 2);
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return message;
}

// Parses the document, refusing repeated input names and anything nested deeper
// than rows of numbers before it is built.
json parse_document(std::string_view text, const std::string& file_name) {
  std::set<std::string> seen;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    if ((event == E::array_start || event == E::object_start) && depth >= 3)
      throw InputError(file_name + ": nested too deeply: expected rows of numbers");
    if (event == E::key && depth == 1) {
      const auto& name = parsed.get_ref<const std::string&>();
      if (!seen.insert(name).second) throw InputError(file_name + ": input " + quote_token(name) + " appears twice");
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), check);
  } catch (const json::parse_error& e) {
    throw InputError(file_name + ": malformed JSON at byte " + std::to_string(e.byte) + ": " + plain_message(e));
  } catch (const json::exception& e) {
    // A number beyond double's range ("number overflow parsing '1e400'").
    throw InputError(file_name + ": " + plain_message(e));
  }
}

template <class T>
class InputReader {
 public:
  explicit InputReader(const std::string& file_name) : file_(file_name) {}

  Array<T> read(const LossInput& input, const json& rows) {
    where_ = file_ + ": input " + quote_token(input.name);
    if (!rows.is_array())
      fail(": expected an array with one entry per row, got " + std::string(rows.type_name()));
    const Type& type = input.type;
    if (type.is_real()) return read_reals(rows);
    const size_t width = type.is_box() ? 4 : expected_width(type, rows);
    // Every row's shape first: the allocation below is then no larger than the document.
    for (size_t r = 0; r < rows.size(); ++r) check_row_shape(rows[r], r, type, width);
    Array<T> array(rows.size(), width);
    for (size_t r = 0; r < rows.size(); ++r) read_row(rows[r], r, array.row(r));
    if (type.is_vec()) remember_width(type, width, input.name);
    return array;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw InputError(where_ + what); }

  Array<T> read_reals(const json& rows) {
    Array<T> array(rows.size(), 1);
    for (size_t r = 0; r < rows.size(); ++r) {
      if (!convert(rows[r], array.data[r]))
        fail(" row " + std::to_string(r) + ": " + value_problem(rows[r]) +
             (rows[r].is_number() ? "" : " (the input is real)"));
    }
    return array;
  }

  // The width every row of a real[C] input must have: what C is bound to by
  // the declaration or an earlier input, else the first row's length.
  size_t expected_width(const Type& type, const json& rows) const {
    if (auto width = numeric_width(type)) return *width;
    if (auto bound = bound_widths_.find(std::string(type.width().str())); bound != bound_widths_.end())
      return bound->second.width;
    if (!rows.empty() && rows[0].is_array()) return rows[0].size();
    return 0;
  }

  void check_row_shape(const json& row, size_t r, const Type& type, size_t width) const {
    auto at = [r] { return " row " + std::to_string(r) + ": "; };
    if (!row.is_array()) {
      const std::string expected =
          type.is_box() ? "a box [x1, y1, x2, y2]" : "an array of numbers (the input is " + type.str() + ")";
      fail(at() + "expected " + expected + ", got " + row.type_name());
    }
    if (row.empty() && type.is_vec()) fail(at() + "a " + type.str() + " row needs at least one value");
    if (row.size() != width) fail(at() + width_mismatch(type, row.size(), width));
  }

  void read_row(const json& row, size_t r, T* out) const {
    for (size_t i = 0; i < row.size(); ++i)
      if (!convert(row[i], out[i]))
        fail(" row " + std::to_string(r) + ", value " + std::to_string(i) + ": " + value_problem(row[i]));
  }

  // A JSON number that T holds; false for anything else (see value_problem).
  static bool convert(const json& entry, T& out) {
    if (!entry.is_number()) return false;
    const double value = entry.get<double>();
    if (!(std::abs(value) <= double(std::numeric_limits<T>::max()))) return false;
    out = static_cast<T>(value);
    return true;
  }

  static std::string value_problem(const json& entry) {
    if (!entry.is_number()) return "expected a number, got " + std::string(entry.type_name());
    return entry.dump() + " is out of range for " + std::string(dtype_name(T{}));
  }

  std::string width_mismatch(const Type& type, size_t got, size_t width) const {
    const std::string values = std::to_string(got) + (got == 1 ? " value" : " values");
    if (type.is_box()) return "a box needs 4 numbers [x1, y1, x2, y2], got " + std::to_string(got);
    if (numeric_width(type)) return "the input is " + type.str() + ", but the row has " + values;
    auto bound = bound_widths_.find(std::string(type.width().str()));
    if (bound != bound_widths_.end())
      return "has " + values + ", but input " + quote_token(bound->second.input) + " binds " +
             std::string(type.width().str()) + " to " + std::to_string(bound->second.width);
    return "has " + values + ", but row 0 has " + std::to_string(width) + " (every row of a " + type.str() +
           " has the same length)";
  }

  void remember_width(const Type& type, size_t width, const std::string& input) {
    if (width == 0) return;  // no rows: nothing learned about C
    bound_widths_.try_emplace(std::string(type.width().str()), BoundWidth{width, input});
  }

  struct BoundWidth {
    size_t width;
    std::string input;  // the input that bound it, for messages
  };

  std::string file_;
  std::string where_;
  std::map<std::string, BoundWidth> bound_widths_;  // real[C] width name -> width
};

void append_row(std::string& out, const auto* values, size_t width, bool as_array) {
  if (as_array) out += '[';
  for (size_t i = 0; i < width; ++i) {
    if (i) out += ", ";
    out += std::isfinite(values[i]) ? shortest(values[i]) : "null";
  }
  if (as_array) out += ']';
}

}  // namespace

template <class T>
std::vector<Array<T>> parse_inputs_json(std::string_view json_text, const std::string& file_name, const Loss& loss) {
  const json document = parse_document(json_text, file_name);
  if (!document.is_object())
    throw InputError(file_name + ": expected a JSON object mapping input names to arrays, got " +
                     std::string(document.type_name()));
  for (const auto& [name, value] : document.items())
    if (!loss.find_input(name))
      throw InputError(file_name + ": unknown input " + quote_token(name) + " (the loss '" + loss.name +
                       "' takes " + input_names(loss) + ")");
  for (const LossInput& input : loss.inputs)
    if (!document.contains(input.name))
      throw InputError(file_name + ": missing input '" + input.name + "' (the loss '" + loss.name + "' takes " +
                       input_names(loss) + ")");

  InputReader<T> reader(file_name);
  std::vector<Array<T>> arrays;
  arrays.reserve(loss.inputs.size());
  for (const LossInput& input : loss.inputs) {
    arrays.push_back(reader.read(input, document.at(input.name)));
    const Array<T>& first = arrays.front();
    if (arrays.back().rows != first.rows)
      throw InputError(file_name + ": inputs '" + loss.inputs.front().name + "' and '" + input.name +
                       "' have different numbers of rows (" + std::to_string(first.rows) + " and " +
                       std::to_string(arrays.back().rows) + ")");
  }
  return arrays;
}

template <class T>
std::vector<Array<T>> read_inputs_json(const std::string& path, const Loss& loss) {
  if (path == "-") {
    std::ostringstream text;
    text << std::cin.rdbuf();
    return parse_inputs_json<T>(text.view(), "<stdin>", loss);
  }
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw InputError(path + ": is a directory, not a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(path + ": read error");
  return parse_inputs_json<T>(text.view(), path, loss);
}

template <class T>
std::string evaluation_json(const Loss& loss, const Evaluation<T>& evaluation, bool with_grads) {
  std::string out = "{\"loss\": ";
  append_row(out, evaluation.loss.data(), evaluation.loss.size(), true);
  if (with_grads) {
    out += ", \"grad\": {";
    const std::vector<size_t> preds = loss.pred_inputs();
    for (size_t g = 0; g < evaluation.grads.size() && g < preds.size(); ++g) {
      const LossInput& input = loss.inputs[preds[g]];
      const Array<T>& grad = evaluation.grads[g];
      if (g) out += ", ";
      out += json(input.name).dump() + ": [";
      for (size_t r = 0; r < grad.rows; ++r) {
        if (r) out += ", ";
        append_row(out, grad.row(r), grad.width, !input.type.is_real());
      }
      out += ']';
    }
    out += '}';
  }
  out += "}\n";
  return out;
}

template std::vector<Array<float>> parse_inputs_json(std::string_view, const std::string&, const Loss&);
template std::vector<Array<double>> parse_inputs_json(std::string_view, const std::string&, const Loss&);
template std::vector<Array<float>> read_inputs_json(const std::string&, const Loss&);
template std::vector<Array<double>> read_inputs_json(const std::string&, const Loss&);
template std::string evaluation_json(const Loss&, const Evaluation<float>&, bool);
template std::string evaluation_json(const Loss&, const Evaluation<double>&, bool);

}  // namespace lossforge::cli
