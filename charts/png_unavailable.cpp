// render_png for a build without cairo: says so.
#include "charts/chart.hpp"
#include "compiler/error.hpp"

namespace lossforge::charts {

void render_png(const Chart&, const std::filesystem::path& file, int, int) {
  throw UnavailableError("cannot write " + file.string() + ": PNG charts are not built into this lossforge (no cairo)");
}

}  // namespace lossforge::charts
