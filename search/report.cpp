#include "search/report.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#if LOSSFORGE_HAVE_CHARTS
#include "charts/chart.hpp"
#endif

namespace lossforge {
namespace {

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string per_second(long count, double seconds) {
  if (count == 0 || seconds <= 0) return "-";
  return fixed(count / seconds, 0);
}

// Draws the plots; "" on success, else why not (no cairo, ...).
std::string plot(const ReportData& d, const std::string& dir) {
#if LOSSFORGE_HAVE_CHARTS
  try {
    charts::Chart fitness{"Proxy fitness per generation", "generation", "AP", {}, {}, {}, {}};
    charts::LineSeries best{"best so far", {}, {}}, median{"median of the generation", {}, {}};
    for (const GenerationSummary& g : d.generations) {
      best.x.push_back(g.generation);
      best.y.push_back(g.best);
      median.x.push_back(g.generation);
      median.y.push_back(g.median);
    }
    fitness.lines = {best, median};
    charts::render_png(fitness, dir + "/fitness.png", 800, 500);
    charts::Chart funnel{"Candidates reaching each stage", "stage (0 generated, 1 unique, 2 converging, 3 simulated, 4 proxied)",
                         "candidates", {}, {}, {}, {}};
    charts::BarSeries bars{"candidates", {0, 1, 2, 3, 4}, {0, 0, 0, 0, 0}};
    for (const GenerationSummary& g : d.generations) {
      bars.height[0] += g.generated;
      bars.height[1] += g.generated - g.duplicates;
      bars.height[2] += g.convergence_passed;
      bars.height[3] += g.simulation_passed;
      bars.height[4] += g.proxied;
    }
    funnel.bars = {bars};
    charts::render_png(funnel, dir + "/funnel.png", 800, 500);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
#else
  (void)d;
  (void)dir;
  return "this build has no charts library";
#endif
}

}  // namespace

std::string render_report(const ReportData& d, const std::string& plot_dir) {
  std::ostringstream out;
  out << "# " << d.title << "\n\n";
  out << "Proxy: " << d.proxy << "  \nSeed " << d.seed << ", " << d.workers << " worker(s), " << d.proxied << " of "
      << d.budget << " proxy evaluations used, " << d.generations.size() << " generation(s).\n\n";

  long generated = 0, unique = 0, converging = 0, simulated = 0, proxied = 0;
  double t_gen = 0, t_conv = 0, t_sim = 0, t_proxy = 0;
  for (const GenerationSummary& g : d.generations) {
    generated += g.generated;
    unique += g.generated - g.duplicates;
    converging += g.convergence_passed;
    simulated += g.simulation_passed;
    proxied += g.proxied;
    t_gen += g.generate_seconds;
    t_conv += g.convergence_seconds;
    t_sim += g.simulation_seconds;
    t_proxy += g.proxy_seconds;
  }
  auto share = [](long part, long whole) { return whole ? fixed(100.0 * part / whole, 1) + " %" : std::string("-"); };
  out << "## Funnel\n\n| stage | in | out | passed | candidates/s |\n|---|---:|---:|---:|---:|\n";
  out << "| generate + dedup | " << generated << " | " << unique << " | " << share(unique, generated) << " | "
      << per_second(generated, t_gen) << " |\n";
  out << "| convergence properties | " << unique << " | " << converging << " | " << share(converging, unique) << " | "
      << per_second(unique, t_conv) << " |\n";
  out << "| optimization simulation | " << converging << " | " << simulated << " | " << share(simulated, converging)
      << " | " << per_second(converging, t_sim) << " |\n";
  out << "| proxy training | " << proxied << " | " << proxied << " | | " << (t_proxy > 0 ? fixed(proxied / t_proxy, 3) : "-")
      << " |\n\n";
  out << "Filtered before the proxy task: " << share(unique - proxied, unique) << " of the unique candidates.\n\n";
  out << "Rejections by reason:\n\n| reason | count |\n|---|---:|\n";
  for (const auto& [reason, count] : d.rejections) out << "| " << reason << " | " << count << " |\n";

  out << "\n## Fitness per generation\n\n";
  if (!plot_dir.empty()) {
    const std::string why = plot(d, plot_dir);
    if (why.empty()) out << "![fitness](fitness.png)\n![funnel](funnel.png)\n\n";
    else out << "(No plots: " << why << ".)\n\n";
  }
  out << "| generation | generated | duplicates | converging | simulated | proxied | best AP so far | median AP |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const GenerationSummary& g : d.generations)
    out << "| " << g.generation << " | " << g.generated << " | " << g.duplicates << " | " << g.convergence_passed << " | "
        << g.simulation_passed << " | " << g.proxied << " | " << fixed(g.best) << " | " << fixed(g.median) << " |\n";

  out << "\n## Best candidates\n\n| rank | AP | candidate | formula (canonical) | file |\n|---:|---:|---:|---|---|\n";
  for (size_t i = 0; i < d.best.size(); ++i)
    out << "| " << i + 1 << " | " << fixed(d.best[i].fitness) << " | " << d.best[i].id << " | `" << d.best[i].infix
        << "` | " << d.best[i].file << " |\n";
  out << "\n" << render_retrain_section(d.retrain);
  return out.str();
}

std::string render_retrain_section(const RetrainTable& t) {
  std::ostringstream out;
  out << "## Retrained on held-out data\n\n";
  if (!t.ran) {
    out << "Not run (`lossforge search --resume RUN --retrain-only` runs it; `--retrain-seeds 0` disables it).\n";
    return out.str();
  }
  if (!t.setup.empty()) out << t.setup << "\n\n";
  auto mean_std = [](double mean, double std, int ok) {
    if (!std::isfinite(mean)) return std::string("-");
    return fixed(mean) + (ok >= 2 ? " ± " + fixed(std) : std::string(" (1 seed)"));
  };
  auto signed_fixed = [](double v) { return std::isfinite(v) ? (v >= 0 ? "+" : "") + fixed(v) : std::string("-"); };
  out << "| loss | proxy AP | AP (mean ± std) | AP50 (mean ± std) | seeds ok/failed | Δ AP | Δ AP50 | beyond spread | formula |\n"
         "|---|---:|---:|---:|---:|---:|---:|:---:|---|\n";
  for (const RetrainRow& r : t.rows) {
    const std::string name = r.formula.empty() ? "default"
                                               : r.name + (r.origin.empty() ? "" : " (" + r.origin + ")");
    out << "| " << name << " | " << fixed(r.proxy_fitness) << " | " << mean_std(r.ap_mean, r.ap_std, r.ok) << " | "
        << mean_std(r.ap50_mean, r.ap50_std, r.ok) << " | " << r.ok << "/" << r.failed << " | " << signed_fixed(r.delta_ap)
        << " | " << signed_fixed(r.delta_ap50) << " | " << r.beyond_spread << " | "
        << (r.formula.empty() ? std::string("-") : "`" + r.formula + "`") << " |\n";
  }
  out << "\n\"default\" is the trainer's own loss for the slot (no loss option; the preset's reference loss with the "
         "simulation proxy). std is the sample standard deviation over the seeds that trained ok; Δ is the mean minus "
         "the default's. "
         "\"beyond spread\" is yes when |Δ AP| exceeds the larger of the two standard deviations (both losses with at "
         "least 2 ok seeds), i.e. the difference is larger than the seed-to-seed noise; \"-\" when there is no spread "
         "to compare with.\n";
  return out.str();
}

}  // namespace lossforge
