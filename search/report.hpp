// RUN/report.md of a search: the rejection funnel per stage, best and median
// proxy fitness per generation, the best candidates, and the final table: the
// best candidates retrained with several seeds on held-out data next to the
// default loss (search/retrain.hpp). With the charts library
// (charts/chart.hpp) the fitness curve and the funnel are also drawn as PNGs
// next to the report; without cairo the report says so and keeps the tables.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "search/engine.hpp"
#include "search/retrain.hpp"

namespace lossforge {

struct ReportEntry {
  uint64_t id = 0;
  std::string deap, infix;
  double fitness = 0;
  std::string file;  // the .loss file, relative to the run folder
};

struct ReportData {
  std::string title, proxy;
  uint64_t seed = 0;
  int workers = 1, budget = 0, proxied = 0;
  std::vector<GenerationSummary> generations;
  std::map<std::string, int> rejections;
  std::vector<ReportEntry> best;
  RetrainTable retrain;
};

// The report's Markdown. With `plot_dir` set, PNG plots are written there
// (fitness.png, funnel.png) and linked from the report.
std::string render_report(const ReportData& data, const std::string& plot_dir = "");

// The report's retraining section ("## Retrained on held-out data" and its
// table: per loss AP and AP50 as mean ± std over the seeds, ok/failed seeds,
// Δ to the default and whether it exceeds the seed-to-seed spread), also what
// `lossforge search` prints at the end.
std::string render_retrain_section(const RetrainTable& table);

}  // namespace lossforge
