// The search: CSE-Autoloss (SPEC §6, Algorithm 1) as a resumable run.
//
// One generation:
//   generate    random trees (ramped half-and-half, generation 0, plus seed
//               losses), later crossover and mutation of the top P parents
//   dedup       canonical hash, then functional fingerprint, against everything
//               seen in the run
//   convergence property verification (search/convergence.hpp)
//   simulation  model optimization simulation (search/simulation.hpp)
//   proxy       the top K survivors by simulation metric, trained by the
//               ProxyEvaluator on `workers` threads; fitness = proxy AP
// After the last generation the caller may run the retraining stage
// (search/retrain.hpp) and rewrite the report with write_report().
//
// A run lives in a folder:
//   config.json       the settings it was started with (resume reads them)
//   candidates.jsonl  one line per candidate: text (DEAP and canonical infix),
//                     hashes, origin and parents, the verdict of every stage it
//                     reached with the reason, metrics and timings
//   proxy.jsonl       each proxy result as soon as it is known (fsynced)
//   checkpoint.json   written atomically after each generation
//   best/*.loss, report.md   the results, rewritten after each generation
//                     (report.md includes the retraining table once
//                     retrain.jsonl exists)
//
// Resuming after a crash (even kill -9) restarts the unfinished generation from
// the last checkpoint: candidates.jsonl is cut back to the checkpoint's length,
// the random state is restored, so the generation is made again identically,
// and candidates whose proxy result is already in proxy.jsonl are not trained
// again. The same seed and worker count give the same run (the random draws do
// not depend on timing; results are recorded in candidate order). Tests simulate
// the crash with LOSSFORGE_SEARCH_KILL_AFTER_PROXY=N: the process sends itself
// SIGKILL right after its N-th proxy result is on disk.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "search/convergence.hpp"
#include "search/evolution.hpp"
#include "search/generate.hpp"
#include "search/proxy.hpp"
#include "search/simulation.hpp"

namespace lossforge {

// The detectors the search can train, and the preset of each one's
// classification slot: one-stage detectors with per-class sigmoid scores
// (fcos, atss) take binary_cls; the two-stage faster_rcnn (softmax over the
// classes and the background) takes multi_cls. The reg slot is always reg.
const std::vector<std::string>& search_detectors();  // fcos, atss, faster_rcnn
// The cls slot's preset name of `detector`; throws InputError for an unknown detector.
std::string cls_preset_of(const std::string& detector);

struct SearchConfig {
  std::string detector = "fcos";  // of the proxy task (search_detectors())
  std::string slot = "cls";   // "cls" or "reg": which loss is searched
  std::string preset;         // empty: cls_preset_of(detector) for cls, reg for reg
  uint64_t seed = 1;
  int population = 500;       // new unique candidates per generation
  int parents = 16;           // P: parents drawn from the top P by fitness
  int proxy_per_generation = 4;  // K: survivors trained per generation
  int budget = 40;            // proxy evaluations in the whole run
  int max_generations = 100;
  int workers = 1;            // proxy trainings at once
  double crossover_rate = 0.5;  // else a mutation
  std::vector<std::string> seed_losses;  // formulas (DEAP or infix) put into generation 0
  int init_depth = 5;         // ramped half-and-half up to this depth
  bool extra_ops = false;     // operators beyond the paper's set
  std::vector<double> constants{1, 2, 3};
  TreeLimits limits;
  bool convergence_stage = true;  // off: the ablation without the two simulation stages
  bool simulation_stage = true;
  ConvergenceOptions convergence;
  SimulationOptions simulation;
  uint64_t proxy_seed = 0;    // the seed of every proxy training (0: the run's seed)
};

// The preset a slot searches over (the config's preset when set, else the slot's preset of the detector).
const Preset& search_preset(const SearchConfig& config);

struct GenerationSummary {
  int generation = 0;
  int generated = 0, duplicates = 0, convergence_passed = 0, simulation_passed = 0, proxied = 0;
  double convergence_seconds = 0, simulation_seconds = 0, proxy_seconds = 0, generate_seconds = 0;
  double best = 0, median = 0;  // of proxy fitness so far (best) and this generation (median); NaN when none
};

class Search {
 public:
  // A new run in `run_dir` (created; must not hold a run already).
  Search(const SearchConfig& config, std::unique_ptr<ProxyEvaluator> proxy, std::string run_dir, std::ostream* log);
  // Continues the run in `run_dir` with its saved config; `workers` > 0 overrides the worker count.
  static Search resume(const std::string& run_dir, std::unique_ptr<ProxyEvaluator> proxy, std::ostream* log, int workers = 0);
  // The saved config of a run (to build its proxy before resuming).
  static SearchConfig saved_config(const std::string& run_dir);

  Search(Search&&) noexcept;
  ~Search();

  // Runs generations until the budget of proxy evaluations or max_generations
  // is spent; writes the results after each generation.
  void run();
  // Rewrites best/*.loss and report.md (after the retraining stage).
  void write_report() const;

  const SearchConfig& config() const;
  const std::vector<GenerationSummary>& generations() const;

 private:
  struct State;
  explicit Search(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace lossforge
