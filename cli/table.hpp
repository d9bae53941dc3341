// Plain-text tables for people: a header row, then columns aligned to the
// right (they hold numbers) and separated by two spaces.
#pragma once

#include <string>
#include <vector>

namespace lossforge::cli {

using TableRow = std::vector<std::string>;

// Rows shorter than the header leave their last cells empty.
std::string render_table(const TableRow& header, const std::vector<TableRow>& rows);

}  // namespace lossforge::cli
