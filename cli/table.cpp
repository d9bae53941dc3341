#include "cli/table.hpp"

#include <algorithm>

namespace lossforge::cli {

std::string render_table(const TableRow& header, const std::vector<TableRow>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) widths[c] = header[c].size();
  for (const TableRow& row : rows)
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) widths[c] = std::max(widths[c], row[c].size());

  std::string out;
  auto append = [&](const TableRow& row) {
    std::string line;
    for (size_t c = 0; c < widths.size(); ++c) {
      const std::string& cell = c < row.size() ? row[c] : std::string();
      if (c) line += "  ";
      line.append(widths[c] - cell.size(), ' ');
      line += cell;
    }
    // Trailing blanks of empty cells help nobody.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  append(header);
  for (const TableRow& row : rows) append(row);
  return out;
}

}  // namespace lossforge::cli
