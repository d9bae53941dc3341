// Proxy evaluation (SPEC §6): the expensive last stage, a short detector
// training with the candidate in its loss slot, fitness = AP on held-out images.
//
// The coordinator (search/engine.hpp) and the workers meet only here: a request
// is candidate text in, a result is a verdict and metrics out, so a worker can
// run anywhere that can run the trainer. Evaluators must be safe to call from
// several threads at once; the coordinator runs `workers` of them in parallel.
// A failing or non-finite training is a result like any other, never an
// exception: the search records it and goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/presets.hpp"

namespace lossforge {

struct ProxyRequest {
  uint64_t candidate = 0;  // the candidate's number in the run
  std::string slot;        // "cls" or "reg"
  std::string formula;     // DSL text (DEAP form) over the slot's preset; empty: the slot's default loss
                           // (the trainer's own, or the preset's reference loss in the simulation)
  uint64_t seed = 0;       // of the training
  std::string run_name;    // the trainer's run folder under runs_dir; empty: cand-N
};

struct ProxyResult {
  std::string status = "failed";  // "ok", "nonfinite" or "failed"
  std::string message;            // one line for nonfinite / failed
  double fitness = 0;             // AP on the proxy validation split; 0 unless ok
  std::map<std::string, double> metrics;  // everything the trainer reported (AP, AP50, ..., seconds)
  double seconds = 0;             // wall time of the evaluation
};

class ProxyEvaluator {
 public:
  virtual ~ProxyEvaluator() = default;
  virtual ProxyResult evaluate(const ProxyRequest& request) = 0;
  virtual std::string describe() const = 0;  // one line for logs and reports
};

// The test double and the `--proxy sim` mode: fitness = the model optimization
// simulation's metric (search/simulation.hpp) with longer training. No detector
// needed; useful to exercise and demonstrate the search end to end.
std::unique_ptr<ProxyEvaluator> make_simulation_proxy(const Preset& preset);

// The real worker: runs the trainer as a child process,
//   TRAIN... --detector D --data DIR --cls-loss SPEC --reg-loss SPEC --epochs E
//            --device cpu --out RUN/proxy/cand-N --seed S --threads T --quiet EXTRA...
// (the candidate in its slot, none for the default; the other slot's SPEC
// only when set), and reads
// the run's metrics.json. Exit 0 ok, 3 non-finite, anything else failed; a run
// over `timeout_seconds` is killed and recorded as failed.
struct TrainerProxyOptions {
  std::vector<std::string> command;  // the trainer: e.g. {"/usr/bin/lossforge", "train"}
  std::string detector = "fcos";
  std::string data;
  std::string other_slot_loss;  // SPEC for the slot not searched; empty: the trainer's default
  int epochs = 1;
  std::string device = "cpu";
  int threads = 1;               // per training
  std::string runs_dir;          // where each training writes its run folder
  double timeout_seconds = 3600;
  std::vector<std::string> extra_args;  // appended to every training's arguments (e.g. --max-images N)
};
std::unique_ptr<ProxyEvaluator> make_trainer_proxy(const TrainerProxyOptions& options);

// Runs `args` (argv[0] looked up on PATH) as a child process with stdout and
// stderr to `log` and no input; the child dies with this process (no orphan
// finishes unrecorded). Returns "" when it ran to an exit status (in `status`),
// else why not (cannot start, killed by a signal, over `timeout_seconds`).
std::string run_child(const std::vector<std::string>& args, const std::string& log, double timeout_seconds, int& status);

// Appends `text` to `path` (created if missing) and makes it durable (fsync)
// before returning: results are on disk as soon as they are known.
void append_durable(const std::string& path, const std::string& text);

// Runs `requests` on `workers` threads; results in request order. `on_result`
// is called (under a lock, in completion order) as each finishes, so callers
// can persist results at once.
std::vector<ProxyResult> evaluate_parallel(ProxyEvaluator& evaluator, const std::vector<ProxyRequest>& requests,
                                           int workers,
                                           const std::function<void(size_t, const ProxyResult&)>& on_result = {});

}  // namespace lossforge
