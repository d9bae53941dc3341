// RUN/report.md of a search: the rejection funnel per stage, best and median
// proxy fitness per generation, the best candidates. With the charts library
// (charts/chart.hpp) the fitness curve and the funnel are also drawn as PNGs
// next to the report; without cairo the report says so and keeps the tables.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "search/engine.hpp"

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
};

// The report's Markdown. With `plot_dir` set, PNG plots are written there
// (fitness.png, funnel.png) and linked from the report.
std::string render_report(const ReportData& data, const std::string& plot_dir = "");

}  // namespace lossforge
