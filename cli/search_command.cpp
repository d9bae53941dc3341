// `lossforge search`: the CSE-Autoloss search (search/engine.hpp) as a command,
// then the retraining of the best candidates on held-out data
// (search/retrain.hpp), plus `--screen N`, which pushes N random candidates
// through the two simulation stages and reports their throughput and
// rejection rates.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <unordered_set>
#include <utility>
#if LOSSFORGE_HAVE_TOML
#include <toml++/toml.h>
#endif

#include "cli/command.hpp"
#include "compiler/canonical.hpp"
#include "search/engine.hpp"
#include "search/fingerprint.hpp"
#include "search/report.hpp"
#include "search/retrain.hpp"
#include "runtime/files.hpp"

namespace lossforge::cli {
namespace {

struct SearchArgs {
  std::string detector;  // empty: fcos (new run), the saved one (resume)
  std::string slot;
  std::string data;
  int budget = 0;
  uint64_t seed = 1;
  std::string out;
  std::string config_file;
  std::string resume;
  int workers = 0;
  std::string proxy;           // train | sim
  std::string train_command;   // the trainer, words split on spaces
  int epochs = 0;
  int threads = 0;
  std::string other_loss;
  int population = 0;
  int generations = 0;
  bool no_simulation_stages = false;
  int screen = 0;
  int retrain_seeds = -1;  // -1: from the config
  int retrain_top = -1;
  bool retrain_only = false;
};

// Settings of the proxy worker that are not part of SearchConfig, saved in
// RUN/proxy-settings.json so that --resume (and the retraining) trains as the
// run began; options given to --resume override them.
struct ProxySettings {
  std::string mode = "train";
  std::string data;  // --data
  std::vector<std::string> command;
  int epochs = 1;
  int threads = 1;
  std::string other_slot_loss;
  double timeout_seconds = 3600;
};

#if LOSSFORGE_HAVE_TOML
template <class T>
void take(const toml::table& table, std::string_view key, T& into, const std::string& file) {
  const toml::node* node = table.get(key);
  if (!node) return;
  if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* array = node->as_array();
    if (!array) throw InputError(file + ": " + std::string(key) + " must be an array");
    into.clear();
    for (const toml::node& item : *array) {
      auto value = item.value<typename T::value_type>();
      if (!value) throw InputError(file + ": bad element in " + std::string(key));
      into.push_back(*value);
    }
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // TOML integers are 64-bit signed; each field gets them range-checked.
    auto value = node->value_exact<int64_t>();
    if (!value) throw InputError(file + ": " + std::string(key) + " has the wrong type");
    if (std::is_unsigned_v<T> && *value < 0)
      throw InputError(file + ": " + std::string(key) + " must not be negative");
    if (!std::in_range<T>(*value)) throw InputError(file + ": " + std::string(key) + " is out of range");
    into = static_cast<T>(*value);
  } else {
    auto value = node->value<T>();
    if (!value) throw InputError(file + ": " + std::string(key) + " has the wrong type");
    into = *value;
  }
}

void read_config(const std::string& file, SearchConfig& c, ProxySettings& p, RetrainConfig& r) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw InputError(file + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  static const std::map<std::string, std::vector<std::string>> known = {
      {"search", {"slot", "preset", "seed", "population", "parents", "proxy_per_generation", "budget", "max_generations",
                  "workers", "crossover_rate", "seed_losses", "init_depth", "max_depth", "max_size", "extra_ops", "constants"}},
      {"stages", {"convergence", "simulation", "convergence_points", "convergence_tolerance", "simulation_steps",
                  "simulation_learning_rate", "simulation_min_ratio"}},
      {"proxy", {"mode", "command", "epochs", "threads", "other_slot_loss", "timeout_seconds", "seed"}},
      {"retrain", {"top", "include_seeds", "seeds", "first_seed", "data", "epochs", "max_images", "heldout_train", "heldout_val",
                   "heldout_seed", "heldout_size", "heldout_min_objects", "heldout_max_objects", "heldout_min_object_size",
                   "heldout_max_object_size", "heldout_clutter", "heldout_noise"}},
  };
  for (const auto& [section, node] : root) {
    auto it = known.find(std::string(section.str()));
    if (it == known.end() || !node.is_table())
      throw InputError(file + ": unknown section [" + std::string(section.str()) + "] (search, stages, proxy, retrain)");
    for (const auto& [key, value] : *node.as_table())
      if (std::find(it->second.begin(), it->second.end(), std::string(key.str())) == it->second.end())
        throw InputError(file + ": unknown key " + std::string(key.str()) + " in [" + it->first + "]");
  }
  if (const toml::table* s = root["search"].as_table()) {
    take(*s, "slot", c.slot, file);
    take(*s, "preset", c.preset, file);
    take(*s, "seed", c.seed, file);
    take(*s, "population", c.population, file);
    take(*s, "parents", c.parents, file);
    take(*s, "proxy_per_generation", c.proxy_per_generation, file);
    take(*s, "budget", c.budget, file);
    take(*s, "max_generations", c.max_generations, file);
    take(*s, "workers", c.workers, file);
    take(*s, "init_depth", c.init_depth, file);
    take(*s, "max_depth", c.limits.max_depth, file);
    take(*s, "max_size", c.limits.max_size, file);
    take(*s, "crossover_rate", c.crossover_rate, file);
    take(*s, "seed_losses", c.seed_losses, file);
    take(*s, "extra_ops", c.extra_ops, file);
    take(*s, "constants", c.constants, file);
  }
  if (const toml::table* s = root["stages"].as_table()) {
    take(*s, "convergence", c.convergence_stage, file);
    take(*s, "simulation", c.simulation_stage, file);
    take(*s, "convergence_points", c.convergence.points, file);
    take(*s, "convergence_tolerance", c.convergence.tolerance, file);
    take(*s, "simulation_steps", c.simulation.steps, file);
    take(*s, "simulation_learning_rate", c.simulation.learning_rate, file);
    take(*s, "simulation_min_ratio", c.simulation.min_ratio, file);
  }
  if (const toml::table* s = root["proxy"].as_table()) {
    take(*s, "mode", p.mode, file);
    take(*s, "command", p.command, file);
    take(*s, "epochs", p.epochs, file);
    take(*s, "threads", p.threads, file);
    take(*s, "other_slot_loss", p.other_slot_loss, file);
    take(*s, "timeout_seconds", p.timeout_seconds, file);
    take(*s, "seed", c.proxy_seed, file);
  }
  if (const toml::table* s = root["retrain"].as_table()) {
    take(*s, "top", r.top, file);
    take(*s, "include_seeds", r.include_seeds, file);
    take(*s, "seeds", r.seeds, file);
    take(*s, "first_seed", r.first_seed, file);
    take(*s, "data", r.data, file);
    take(*s, "epochs", r.epochs, file);
    take(*s, "max_images", r.max_images, file);
    HeldoutSynth& h = r.heldout;
    take(*s, "heldout_train", h.train, file);
    take(*s, "heldout_val", h.val, file);
    take(*s, "heldout_seed", h.seed, file);
    take(*s, "heldout_size", h.size, file);
    take(*s, "heldout_min_objects", h.min_objects, file);
    take(*s, "heldout_max_objects", h.max_objects, file);
    take(*s, "heldout_min_object_size", h.min_object_size, file);
    take(*s, "heldout_max_object_size", h.max_object_size, file);
    take(*s, "heldout_clutter", h.clutter, file);
    take(*s, "heldout_noise", h.noise, file);
  }
}

#else
void read_config(const std::string& file, SearchConfig&, ProxySettings&, RetrainConfig&) {
  throw UnavailableError("--config " + file + ": this build of lossforge has no TOML reader (tomlplusplus)");
}
#endif

std::vector<std::string> split_words(const std::string& text);

void save_proxy_settings(const std::string& run_dir, const ProxySettings& p) {
  nlohmann::ordered_json j;
  j["mode"] = p.mode;
  j["data"] = p.data;
  j["command"] = p.command;
  j["epochs"] = p.epochs;
  j["threads"] = p.threads;
  j["other_slot_loss"] = p.other_slot_loss;
  j["timeout_seconds"] = p.timeout_seconds;
  write_file_atomic(run_dir + "/proxy-settings.json", j.dump(1) + "\n");
}

// The saved settings; the defaults for a run from before the file.
ProxySettings load_proxy_settings(const std::string& run_dir) {
  ProxySettings p;
  std::ifstream in(run_dir + "/proxy-settings.json");
  if (!in) return p;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    p.mode = j.at("mode");
    p.data = j.at("data");
    p.command = j.at("command").get<std::vector<std::string>>();
    p.epochs = j.at("epochs");
    p.threads = j.at("threads");
    p.other_slot_loss = j.at("other_slot_loss");
    p.timeout_seconds = j.at("timeout_seconds");
  } catch (const nlohmann::json::exception& e) {
    throw InputError("search: bad " + run_dir + "/proxy-settings.json: " + e.what());
  }
  return p;
}

// Command-line proxy options over `p`.
void apply_proxy_args(const SearchArgs& args, ProxySettings& p) {
  if (!args.proxy.empty()) p.mode = args.proxy;
  if (!args.data.empty()) p.data = args.data;
  if (!args.train_command.empty()) p.command = split_words(args.train_command);
  if (args.epochs) p.epochs = args.epochs;
  if (args.threads) p.threads = args.threads;
  if (!args.other_loss.empty()) p.other_slot_loss = args.other_loss;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string self_executable() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("lossforge") : self.string();
}

TrainerProxyOptions trainer_options(const SearchConfig& config, const ProxySettings& p, const std::string& data) {
  TrainerProxyOptions o;
  o.command = p.command.empty() ? std::vector<std::string>{self_executable(), "train"} : p.command;
  o.detector = config.detector;  // the trainer builds the detector whose slot is searched
  o.data = data;
  o.other_slot_loss = p.other_slot_loss;
  o.epochs = p.epochs;
  o.threads = p.threads;
  o.timeout_seconds = p.timeout_seconds;
  return o;
}

std::unique_ptr<ProxyEvaluator> make_proxy(const SearchConfig& config, const ProxySettings& p, const std::string& run_dir) {
  if (p.mode == "sim") return make_simulation_proxy(search_preset(config));
  if (p.mode != "train") throw UsageError("--proxy must be train or sim, not '" + p.mode + "'");
  if (p.data.empty()) throw UsageError("the proxy trainer needs --data DIR (or --proxy sim)");
  TrainerProxyOptions o = trainer_options(config, p, p.data);
  o.runs_dir = run_dir + "/proxy";
  return make_trainer_proxy(o);
}

// The proxy of a search that is not continued (--retrain-only): trains
// nothing; describes itself as the run's report did.
class FinishedSearchProxy : public ProxyEvaluator {
 public:
  explicit FinishedSearchProxy(const std::string& run_dir) {
    std::ifstream in(run_dir + "/report.md");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("Proxy: ", 0) == 0) {
        description_ = line.substr(7);
        while (!description_.empty() && description_.back() == ' ') description_.pop_back();
        break;
      }
  }
  ProxyResult evaluate(const ProxyRequest&) override {
    ProxyResult r;
    r.message = "the search is not continued (--retrain-only)";
    return r;
  }
  std::string describe() const override { return description_; }

 private:
  std::string description_ = "(the search's proxy)";
};

// The retraining stage (search/retrain.hpp) of the run in `run_dir`, then the
// report rewritten with its table, which is also printed.
void retrain(const Search& search, const RetrainConfig& r, const ProxySettings& p, const std::string& run_dir) {
  const SearchConfig& config = search.config();
  if (r.seeds <= 0) {
    save_retrain_config(run_dir, r);
    std::cout << "retrain: disabled (--retrain-seeds 0)\n";
    return;
  }
  if (r.top < 0) throw UsageError("--retrain-top must not be negative");
  std::unique_ptr<ProxyEvaluator> evaluator;
  std::string data;
  if (p.mode == "sim") {
    evaluator = make_simulation_proxy(search_preset(config));
  } else {
    data = prepare_heldout_data(run_dir, r, {self_executable(), "data", "synth"}, &std::cout);
    TrainerProxyOptions o = trainer_options(config, p, data);
    if (r.epochs > 0) o.epochs = r.epochs;
    if (r.max_images > 0) o.extra_args = {"--max-images", std::to_string(r.max_images)};
    o.runs_dir = run_dir + "/retrain";
    evaluator = make_trainer_proxy(o);
  }
  run_retrain(run_dir, config.slot, r, data, *evaluator, config.workers, &std::cout);
  search.write_report();
  std::cout << "\n" << render_retrain_section(read_retrain_table(run_dir));
}

// N random candidates through dedup and both simulation stages, each stage timed.
int run_screen(const SearchConfig& config, int count) {
  const Preset& preset = search_preset(config);
  Rng rng(config.seed);
  GenerateOptions generate;
  generate.extra_ops = config.extra_ops;
  generate.constants = config.constants;
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto t = Clock::now();
  const std::vector<Expr> trees = ramped_half_and_half(preset, rng, [&] {
    GenerateOptions o = generate;
    o.max_depth = config.init_depth;
    return o;
  }(), size_t(count));
  const double t_generate = since(t);
  t = Clock::now();
  std::unordered_set<uint64_t> canonical;
  FingerprintSet functions;
  std::vector<Expr> unique;
  for (const Expr& e : trees)
    if (canonical.insert(canonical_hash(e)).second && functions.insert(fingerprint(preset, e))) unique.push_back(e);
  const double t_dedup = since(t);
  ConvergenceOptions conv = config.convergence;
  conv.stop_at_first_failure = true;
  std::map<std::string, int> reasons;
  std::vector<Expr> converging;
  t = Clock::now();
  for (const Expr& e : unique) {
    const ConvergenceReport r = verify_convergence(candidate_loss(preset, e), preset, conv);
    if (r.passed) converging.push_back(e);
    else ++reasons[r.checks.back().property];
  }
  const double t_conv = since(t);
  int simulated = 0;
  t = Clock::now();
  for (const Expr& e : converging) simulated += simulate_optimization(candidate_loss(preset, e), preset, config.simulation).passed;
  const double t_sim = since(t);
  auto line = [](const std::string& stage, size_t in, size_t out, double seconds) {
    std::cout << std::left << std::setw(26) << stage << std::right << std::setw(7) << in << " -> " << std::setw(6) << out
              << "  rejected " << std::setw(5) << std::fixed << std::setprecision(1)
              << (in ? 100.0 * double(in - out) / double(in) : 0.0) << " %  " << std::setw(9) << std::setprecision(0)
              << (seconds > 0 ? double(in) / seconds : 0.0) << " candidates/s  (" << std::setprecision(3) << seconds
              << " s)\n";
  };
  std::cout << "screening " << count << " random candidates of preset " << preset.name << " (depth <= " << config.init_depth
            << ", seed " << config.seed << "), one thread\n";
  std::cout << std::left << std::setw(26) << "generate" << std::right << std::setw(7) << count << " trees in "
            << std::setprecision(3) << std::fixed << t_generate << " s\n";
  line("dedup (canonical+function)", trees.size(), unique.size(), t_dedup);
  line("convergence properties", unique.size(), converging.size(), t_conv);
  line("optimization simulation", converging.size(), size_t(simulated), t_sim);
  std::cout << "convergence rejections:";
  for (const auto& [reason, n] : reasons) std::cout << " " << reason << " " << n << ";";
  std::cout << "\npassing both stages: " << simulated << " of " << unique.size() << " unique ("
            << std::setprecision(2) << (unique.empty() ? 0.0 : 100.0 * simulated / double(unique.size())) << " %)\n";
  return exit_code::kOk;
}

void apply_retrain_args(const SearchArgs& args, RetrainConfig& r) {
  if (args.retrain_seeds >= 0) r.seeds = args.retrain_seeds;
  if (args.retrain_top >= 0) r.top = args.retrain_top;
}

int run_search(const SearchArgs& args) {
  ProxySettings proxy;
  if (args.retrain_only && args.resume.empty()) throw UsageError("--retrain-only needs --resume RUN (a run to retrain from)");
  if (!args.resume.empty()) {
    if (!args.out.empty() || !args.config_file.empty() || args.budget || !args.slot.empty())
      throw UsageError(
          "--resume RUN continues a run with its saved settings: give only --workers, --data, proxy and retrain options "
          "(which override the saved ones)");
    SearchConfig config = Search::saved_config(args.resume);
    if (!args.detector.empty() && args.detector != config.detector)
      throw UsageError("--detector " + args.detector + ": the run in " + args.resume + " searches for " + config.detector);
    proxy = load_proxy_settings(args.resume);
    apply_proxy_args(args, proxy);
    RetrainConfig retrain_config = load_retrain_config(args.resume, RetrainConfig{});
    apply_retrain_args(args, retrain_config);
    // Retraining alone trains no candidate: the search's proxy needs no data then.
    Search search = Search::resume(args.resume,
                                   args.retrain_only ? std::make_unique<FinishedSearchProxy>(args.resume)
                                                     : make_proxy(config, proxy, args.resume),
                                   &std::cout, args.workers);
    if (!args.retrain_only) search.run();
    retrain(search, retrain_config, proxy, args.resume);
    return exit_code::kOk;
  }
  SearchConfig config;
  RetrainConfig retrain_config;
  if (!args.config_file.empty()) read_config(args.config_file, config, proxy, retrain_config);
  apply_retrain_args(args, retrain_config);
  config.detector = args.detector.empty() ? "fcos" : args.detector;
  cls_preset_of(config.detector);  // an unknown detector fails here, before anything is written
  if (!args.slot.empty()) config.slot = args.slot;
  if (config.slot != "cls" && config.slot != "reg") throw UsageError("--slot must be cls or reg");
  config.seed = args.seed;
  if (args.budget) config.budget = args.budget;
  if (args.workers) config.workers = args.workers;
  if (args.population) config.population = args.population;
  if (args.generations) config.max_generations = args.generations;
  if (args.no_simulation_stages) config.convergence_stage = config.simulation_stage = false;
  apply_proxy_args(args, proxy);
  if (args.screen > 0) return run_screen(config, args.screen);
  if (args.out.empty()) throw UsageError("--out RUN is required (or --resume RUN, or --screen N)");
  Search search(config, make_proxy(config, proxy, args.out), args.out, &std::cout);
  save_proxy_settings(args.out, proxy);  // --resume trains with these settings
  save_retrain_config(args.out, retrain_config);
  search.run();
  retrain(search, retrain_config, proxy, args.out);
  return exit_code::kOk;
}

}  // namespace

Command add_search_command(CLI::App& parent) {
  auto args = std::make_shared<SearchArgs>();
  CLI::App* app = parent.add_subcommand("search", "Search for loss functions (CSE-Autoloss evolution with convergence simulation)");
  app->add_option("--detector", args->detector,
                  "Detector of the proxy task: fcos (default), atss (cls slot: binary_cls) or faster_rcnn (cls slot: multi_cls)")
      ->check(CLI::IsMember(search_detectors()));
  app->add_option("--slot", args->slot, "Loss slot to search: cls (the detector's classification preset) or reg (reg preset)");
  app->add_option("--data", args->data, "Proxy data folder (lossforge data synth), for --proxy train");
  app->add_option("--budget", args->budget, "Proxy trainings in the whole run (default 40)");
  app->add_option("--seed", args->seed, "Seed of the run: the same seed and worker count give the same run")->capture_default_str();
  app->add_option("--out", args->out, "Run folder to create");
  app->add_option("--config", args->config_file, "TOML file with every other setting (see examples/search.toml)");
  app->add_option("--resume", args->resume,
                  "Continue the run in this folder after a crash or kill, with its saved settings (the options given "
                  "here override its proxy and retrain settings)");
  app->add_option("--workers", args->workers, "Proxy trainings at once (default 1)");
  app->add_option("--proxy", args->proxy, "train: detector training (default); sim: the simulation as a stand-in");
  app->add_option("--train-command", args->train_command, "The trainer to run (default: this executable's `train`)");
  app->add_option("--epochs", args->epochs, "Epochs of each proxy training (default 1)");
  app->add_option("--threads", args->threads, "Threads of each proxy training (default 1)");
  app->add_option("--other-loss", args->other_loss, "Loss SPEC for the slot not searched (default: the trainer's)");
  app->add_option("--population", args->population, "New unique candidates per generation (default 500)");
  app->add_option("--generations", args->generations, "Most generations (default 100)");
  app->add_flag("--no-simulation-stages", args->no_simulation_stages,
                "Ablation: skip convergence verification and optimization simulation");
  app->add_option("--screen", args->screen, "Only screen N random candidates and print throughput per stage");
  app->add_option("--retrain-seeds", args->retrain_seeds,
                  "After the search, retrain the best candidates and the default loss with S seeds each on held-out "
                  "data (default 3; 0: no retraining)");
  app->add_option("--retrain-top", args->retrain_top, "How many of the best candidates to retrain (default 2)");
  app->add_flag("--retrain-only", args->retrain_only,
                "With --resume RUN: only run (or finish) the retraining of that run's best candidates");
  app->footer(
      "Writes RUN/candidates.jsonl (every candidate, its stage verdicts, metrics, timings), RUN/proxy.jsonl,\n"
      "RUN/checkpoint.json after each generation, RUN/best/*.loss and RUN/report.md (settings in\n"
      "RUN/config.json, proxy-settings.json, retrain.json). After a crash,\n"
      "`lossforge search --resume RUN` continues without losing or retraining anything.\n"
      "Then the retraining ([retrain] in the config): the top K candidates by proxy AP and the default loss,\n"
      "each trained from scratch with S seeds on held-out data ([retrain] data, or a synthetic variant\n"
      "generated under RUN/heldout), results in RUN/retrain.jsonl, a mean ± std table in RUN/report.md\n"
      "and printed. `--resume RUN --retrain-only` runs or finishes just that stage of a run.\n");
  return {app, [args] { return run_search(*args); }};
}

}  // namespace lossforge::cli
