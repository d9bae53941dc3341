#include "detectors/data/json_fields.hpp"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "compiler/error.hpp"

namespace lossforge::data::json_fields {

using nlohmann::json;

namespace {

// nlohmann's message without its "[json.exception.parse_error.101] " tag, on one line.
std::string plain_message(const json::exception& e) {
  std::string message = e.what();
  if (auto bracket = message.find("] "); message.starts_with("[json.exception") && bracket != std::string::npos)
    message.erase(0, bracket + 2);
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  return message;
}

std::string type_name(const json& value) { return value.type_name(); }

}  // namespace

json read_file(const std::filesystem::path& path, std::string_view drop_key) {
  const std::string name = path.string();
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw InputError(name + ": no such file");
  if (std::filesystem::is_directory(path, error)) throw InputError(name + ": is a directory, expected a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(name + ": cannot open for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw InputError(name + ": read error");
  const std::string text = buffer.str();
  try {
    if (drop_key.empty()) return json::parse(text);
    const std::string dropped(drop_key);
    return json::parse(text, [&](int, json::parse_event_t event, json& parsed) {
      return !(event == json::parse_event_t::key && parsed.is_string() && parsed.get_ref<const std::string&>() == dropped);
    });
  } catch (const json::exception& e) {
    throw InputError(name + ": malformed JSON: " + plain_message(e));
  }
}

void fail(const std::string& where, const std::string& problem) { throw InputError(where + ": " + problem); }

const json& member(const json& object, std::string_view key, const std::string& where) {
  if (!object.is_object()) fail(where, "expected an object, found " + type_name(object));
  auto it = object.find(key);
  if (it == object.end()) fail(where, "missing key \"" + std::string(key) + "\"");
  return *it;
}

const json* optional_member(const json& object, std::string_view key, const std::string& where) {
  if (!object.is_object()) fail(where, "expected an object, found " + type_name(object));
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

int64_t integer(const json& value, const std::string& where) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) fail(where, "integer out of range");
    return static_cast<int64_t>(u);
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
    fail(where, "expected an integer, found " + value.dump());
  }
  fail(where, "expected an integer, found " + type_name(value));
}

double finite_number(const json& value, const std::string& where) {
  if (!value.is_number()) fail(where, "expected a number, found " + type_name(value));
  const double d = value.get<double>();
  if (!std::isfinite(d)) fail(where, "expected a finite number");
  return d;
}

std::string string(const json& value, const std::string& where) {
  if (!value.is_string()) fail(where, "expected a string, found " + type_name(value));
  return value.get<std::string>();
}

bool flag(const json& value, const std::string& where) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) {
    const double d = value.get<double>();
    if (d == 0 || d == 1) return d == 1;
  }
  fail(where, "expected 0, 1, true or false, found " + value.dump());
}

const json& array(const json& value, const std::string& where) {
  if (!value.is_array()) fail(where, "expected an array, found " + type_name(value));
  return value;
}

}  // namespace lossforge::data::json_fields
