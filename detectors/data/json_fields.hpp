// Reading JSON files with errors that name the file and the JSON path of the
// bad value ("gt.json: annotations[3].bbox: expected 4 numbers"). Internal to
// the data component.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lossforge::data::json_fields {

// The parsed file; `drop_key` (e.g. "segmentation") is discarded while parsing
// at any depth, which keeps the memory of large COCO files down. Throws
// InputError naming the file when it is missing, unreadable or not JSON.
nlohmann::json read_file(const std::filesystem::path& path, std::string_view drop_key = {});

// Typed access; `where` is "FILE: json.path" and goes into the error.
[[noreturn]] void fail(const std::string& where, const std::string& problem);
const nlohmann::json& member(const nlohmann::json& object, std::string_view key, const std::string& where);
const nlohmann::json* optional_member(const nlohmann::json& object, std::string_view key, const std::string& where);
int64_t integer(const nlohmann::json& value, const std::string& where);  // integral numbers, 3.0 included
double finite_number(const nlohmann::json& value, const std::string& where);
std::string string(const nlohmann::json& value, const std::string& where);
bool flag(const nlohmann::json& value, const std::string& where);  // true/false or 0/1
const nlohmann::json& array(const nlohmann::json& value, const std::string& where);

}  // namespace lossforge::data::json_fields
