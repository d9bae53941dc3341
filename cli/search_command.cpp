// `lossforge search`: the CSE-Autoloss search (search/engine.hpp) as a command,
// plus `--screen N`, which pushes N random candidates through the two
// simulation stages and reports their throughput and rejection rates.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_set>
#if LOSSFORGE_HAVE_TOML
#include <toml++/toml.h>
#endif

#include "cli/command.hpp"
#include "compiler/canonical.hpp"
#include "search/engine.hpp"
#include "search/fingerprint.hpp"

namespace lossforge::cli {
namespace {

struct SearchArgs {
  std::string detector = "fcos";
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
};

// Settings of the proxy worker that are not part of SearchConfig.
struct ProxySettings {
  std::string mode = "train";
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
  } else {
    auto value = node->value<T>();
    if (!value) throw InputError(file + ": " + std::string(key) + " has the wrong type");
    into = *value;
  }
}

void read_config(const std::string& file, SearchConfig& c, ProxySettings& p) {
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
  };
  for (const auto& [section, node] : root) {
    auto it = known.find(std::string(section.str()));
    if (it == known.end() || !node.is_table())
      throw InputError(file + ": unknown section [" + std::string(section.str()) + "] (search, stages, proxy)");
    for (const auto& [key, value] : *node.as_table())
      if (std::find(it->second.begin(), it->second.end(), std::string(key.str())) == it->second.end())
        throw InputError(file + ": unknown key " + std::string(key.str()) + " in [" + it->first + "]");
  }
  if (const toml::table* s = root["search"].as_table()) {
    take(*s, "slot", c.slot, file);
    take(*s, "preset", c.preset, file);
    int64_t seed = int64_t(c.seed);
    take(*s, "seed", seed, file);
    c.seed = uint64_t(seed);
    int64_t v;
    auto integer = [&](std::string_view key, int& into) {
      v = into;
      take(*s, key, v, file);
      into = int(v);
    };
    integer("population", c.population);
    integer("parents", c.parents);
    integer("proxy_per_generation", c.proxy_per_generation);
    integer("budget", c.budget);
    integer("max_generations", c.max_generations);
    integer("workers", c.workers);
    integer("init_depth", c.init_depth);
    integer("max_depth", c.limits.max_depth);
    integer("max_size", c.limits.max_size);
    take(*s, "crossover_rate", c.crossover_rate, file);
    take(*s, "seed_losses", c.seed_losses, file);
    take(*s, "extra_ops", c.extra_ops, file);
    take(*s, "constants", c.constants, file);
  }
  if (const toml::table* s = root["stages"].as_table()) {
    take(*s, "convergence", c.convergence_stage, file);
    take(*s, "simulation", c.simulation_stage, file);
    int64_t v = c.convergence.points;
    take(*s, "convergence_points", v, file);
    c.convergence.points = int(v);
    take(*s, "convergence_tolerance", c.convergence.tolerance, file);
    v = c.simulation.steps;
    take(*s, "simulation_steps", v, file);
    c.simulation.steps = int(v);
    take(*s, "simulation_learning_rate", c.simulation.learning_rate, file);
    take(*s, "simulation_min_ratio", c.simulation.min_ratio, file);
  }
  if (const toml::table* s = root["proxy"].as_table()) {
    take(*s, "mode", p.mode, file);
    take(*s, "command", p.command, file);
    int64_t v = p.epochs;
    take(*s, "epochs", v, file);
    p.epochs = int(v);
    v = p.threads;
    take(*s, "threads", v, file);
    p.threads = int(v);
    take(*s, "other_slot_loss", p.other_slot_loss, file);
    take(*s, "timeout_seconds", p.timeout_seconds, file);
    int64_t seed = 0;
    take(*s, "seed", seed, file);
    c.proxy_seed = uint64_t(seed);
  }
}

#else
void read_config(const std::string& file, SearchConfig&, ProxySettings&) {
  throw UnavailableError("--config " + file + ": this build of lossforge has no TOML reader (tomlplusplus)");
}
#endif

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

std::unique_ptr<ProxyEvaluator> make_proxy(const SearchConfig& config, const ProxySettings& p, const SearchArgs& args,
                                           const std::string& run_dir, const std::string& data) {
  if (p.mode == "sim") return make_simulation_proxy(search_preset(config));
  if (p.mode != "train") throw UsageError("--proxy must be train or sim, not '" + p.mode + "'");
  if (data.empty()) throw UsageError("the proxy trainer needs --data DIR (or --proxy sim)");
  TrainerProxyOptions o;
  o.command = p.command.empty() ? std::vector<std::string>{self_executable(), "train"} : p.command;
  o.detector = args.detector;
  o.data = data;
  o.other_slot_loss = p.other_slot_loss;
  o.epochs = p.epochs;
  o.threads = p.threads;
  o.runs_dir = run_dir + "/proxy";
  o.timeout_seconds = p.timeout_seconds;
  return make_trainer_proxy(o);
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

int run_search(const SearchArgs& args) {
  ProxySettings proxy;
  if (!args.resume.empty()) {
    if (!args.out.empty() || !args.config_file.empty() || args.budget || !args.slot.empty())
      throw UsageError("--resume RUN continues a run with its saved settings: give only --workers, --data and proxy options");
    SearchConfig config = Search::saved_config(args.resume);
    if (!args.proxy.empty()) proxy.mode = args.proxy;
    if (!args.train_command.empty()) proxy.command = split_words(args.train_command);
    if (args.epochs) proxy.epochs = args.epochs;
    if (args.threads) proxy.threads = args.threads;
    proxy.other_slot_loss = args.other_loss;
    Search search = Search::resume(args.resume, make_proxy(config, proxy, args, args.resume, args.data), &std::cout,
                                   args.workers);
    search.run();
    return exit_code::kOk;
  }
  SearchConfig config;
  if (!args.config_file.empty()) read_config(args.config_file, config, proxy);
  if (!args.slot.empty()) config.slot = args.slot;
  if (config.slot != "cls" && config.slot != "reg") throw UsageError("--slot must be cls or reg");
  config.seed = args.seed;
  if (args.budget) config.budget = args.budget;
  if (args.workers) config.workers = args.workers;
  if (args.population) config.population = args.population;
  if (args.generations) config.max_generations = args.generations;
  if (args.no_simulation_stages) config.convergence_stage = config.simulation_stage = false;
  if (!args.proxy.empty()) proxy.mode = args.proxy;
  if (!args.train_command.empty()) proxy.command = split_words(args.train_command);
  if (args.epochs) proxy.epochs = args.epochs;
  if (args.threads) proxy.threads = args.threads;
  if (!args.other_loss.empty()) proxy.other_slot_loss = args.other_loss;
  if (args.screen > 0) return run_screen(config, args.screen);
  if (args.out.empty()) throw UsageError("--out RUN is required (or --resume RUN, or --screen N)");
  if (args.detector != "fcos") throw UsageError("--detector: only fcos is available");
  Search search(config, make_proxy(config, proxy, args, args.out, args.data), args.out, &std::cout);
  search.run();
  return exit_code::kOk;
}

}  // namespace

Command add_search_command(CLI::App& parent) {
  auto args = std::make_shared<SearchArgs>();
  CLI::App* app = parent.add_subcommand("search", "Search for loss functions (CSE-Autoloss evolution with convergence simulation)");
  app->add_option("--detector", args->detector, "Detector of the proxy task")->capture_default_str();
  app->add_option("--slot", args->slot, "Loss slot to search: cls (binary_cls preset) or reg (reg preset)");
  app->add_option("--data", args->data, "Proxy data folder (lossforge data synth), for --proxy train");
  app->add_option("--budget", args->budget, "Proxy trainings in the whole run (default 40)");
  app->add_option("--seed", args->seed, "Seed of the run: the same seed and worker count give the same run")->capture_default_str();
  app->add_option("--out", args->out, "Run folder to create");
  app->add_option("--config", args->config_file, "TOML file with every other setting (see examples/search.toml)");
  app->add_option("--resume", args->resume, "Continue the run in this folder after a crash or kill");
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
  app->footer(
      "Writes RUN/candidates.jsonl (every candidate, its stage verdicts, metrics, timings), RUN/proxy.jsonl,\n"
      "RUN/checkpoint.json after each generation, RUN/best/*.loss and RUN/report.md. After a crash,\n"
      "`lossforge search --resume RUN` continues without losing or retraining anything.\n");
  return {app, [args] { return run_search(*args); }};
}

}  // namespace lossforge::cli
