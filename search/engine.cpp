#include "search/engine.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <unordered_set>

#include "compiler/canonical.hpp"
#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "runtime/files.hpp"
#include "search/fingerprint.hpp"
#include "search/report.hpp"
#include "search/retrain.hpp"

namespace lossforge {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << v;
  return s.str();
}
uint64_t unhex(const std::string& s) { return std::stoull(s, nullptr, 16); }

Json config_json(const SearchConfig& c) {
  Json j;
  j["detector"] = c.detector;
  j["slot"] = c.slot;
  j["preset"] = search_preset(c).name;
  j["seed"] = c.seed;
  j["population"] = c.population;
  j["parents"] = c.parents;
  j["proxy_per_generation"] = c.proxy_per_generation;
  j["budget"] = c.budget;
  j["max_generations"] = c.max_generations;
  j["workers"] = c.workers;
  j["crossover_rate"] = c.crossover_rate;
  j["seed_losses"] = c.seed_losses;
  j["init_depth"] = c.init_depth;
  j["extra_ops"] = c.extra_ops;
  j["constants"] = c.constants;
  j["max_depth"] = c.limits.max_depth;
  j["max_size"] = c.limits.max_size;
  j["convergence_stage"] = c.convergence_stage;
  j["simulation_stage"] = c.simulation_stage;
  j["convergence_points"] = c.convergence.points;
  j["convergence_tolerance"] = c.convergence.tolerance;
  j["simulation_steps"] = c.simulation.steps;
  j["simulation_learning_rate"] = c.simulation.learning_rate;
  j["simulation_min_ratio"] = c.simulation.min_ratio;
  j["proxy_seed"] = c.proxy_seed ? c.proxy_seed : c.seed;
  return j;
}

SearchConfig config_from_json(const Json& j) {
  SearchConfig c;
  c.detector = j.value("detector", "fcos");  // runs from before the key: FCOS
  c.slot = j.at("slot");
  c.preset = j.at("preset");
  c.seed = j.at("seed");
  c.population = j.at("population");
  c.parents = j.at("parents");
  c.proxy_per_generation = j.at("proxy_per_generation");
  c.budget = j.at("budget");
  c.max_generations = j.at("max_generations");
  c.workers = j.at("workers");
  c.crossover_rate = j.at("crossover_rate");
  c.seed_losses = j.at("seed_losses").get<std::vector<std::string>>();
  c.init_depth = j.at("init_depth");
  c.extra_ops = j.at("extra_ops");
  c.constants = j.at("constants").get<std::vector<double>>();
  c.limits.max_depth = j.at("max_depth");
  c.limits.max_size = j.at("max_size");
  c.convergence_stage = j.at("convergence_stage");
  c.simulation_stage = j.at("simulation_stage");
  c.convergence.points = j.at("convergence_points");
  c.convergence.tolerance = j.at("convergence_tolerance");
  c.simulation.steps = j.at("simulation_steps");
  c.simulation.learning_rate = j.at("simulation_learning_rate");
  c.simulation.min_ratio = j.at("simulation_min_ratio");
  c.proxy_seed = j.at("proxy_seed");
  return c;
}

Json result_json(const ProxyResult& r) {
  Json j;
  j["status"] = r.status;
  if (!r.message.empty()) j["message"] = r.message;
  j["fitness"] = r.fitness;
  j["metrics"] = r.metrics;
  j["seconds"] = r.seconds;
  return j;
}

ProxyResult result_from_json(const Json& j) {
  ProxyResult r;
  r.status = j.at("status");
  r.message = j.value("message", "");
  r.fitness = j.at("fitness");
  r.metrics = j.at("metrics").get<std::map<std::string, double>>();
  r.seconds = j.at("seconds");
  return r;
}

// A candidate that reached a fitness or a simulation metric: a possible parent.
struct Member {
  uint64_t id = 0;
  Expr expr;
  std::string deap;
  double fitness = NAN;  // proxy AP; NaN when not (successfully) proxied
  double simulated = NAN;
};

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string rate(int count, double seconds) {
  if (count == 0) return "-";
  return fixed(seconds > 0 ? count / seconds : INFINITY, 0) + "/s";
}

}  // namespace

const std::vector<std::string>& search_detectors() {
  static const std::vector<std::string> names = {"fcos", "atss", "faster_rcnn"};
  return names;
}

std::string cls_preset_of(const std::string& detector) {
  if (detector == "fcos" || detector == "atss") return "binary_cls";
  if (detector == "faster_rcnn") return "multi_cls";
  throw InputError("search: unknown detector '" + detector + "' (fcos, atss, faster_rcnn)");
}

const Preset& search_preset(const SearchConfig& config) {
  std::string name = config.preset;
  if (name.empty()) {
    if (config.slot == "cls") name = cls_preset_of(config.detector);
    else if (config.slot == "reg") name = "reg";
    else throw InputError("search: unknown slot '" + config.slot + "' (cls or reg)");
  }
  const Preset* preset = find_preset(name);
  if (!preset) throw InputError("search: unknown preset '" + name + "' (" + preset_names() + ")");
  return *preset;
}

struct Search::State {
  SearchConfig config;
  const Preset* preset = nullptr;
  std::unique_ptr<ProxyEvaluator> proxy;
  std::string dir;
  std::ostream* log = nullptr;
  NameMap names;
  Rng rng;
  int generation = 0;  // the next one to run
  uint64_t next_id = 0;
  int proxied = 0;
  std::unordered_set<uint64_t> seen_canonical;
  std::vector<Fingerprint> seen_fingerprints;
  FingerprintSet fingerprints;
  std::vector<Member> members;
  std::map<std::string, int> rejections;  // reason -> count, over the run
  std::map<std::string, ProxyResult> proxy_cache;  // formula -> result, from proxy.jsonl
  std::vector<GenerationSummary> summaries;
  int proxy_results_this_process = 0;

  std::string path(const std::string& name) const { return dir + "/" + name; }

  Expr parse(const std::string& text) const {
    return load_formula(SourceFile::from_text("<candidate>", text), *preset).body;
  }

  void run_generation();
  void write_checkpoint() const;
  void load_checkpoint();
  void write_results() const;
  std::vector<const Member*> parents() const;
};

std::vector<const Member*> Search::State::parents() const {
  std::vector<const Member*> ranked;
  for (const Member& m : members)
    if (std::isfinite(m.fitness)) ranked.push_back(&m);
  auto by_fitness = [](const Member* a, const Member* b) { return a->fitness != b->fitness ? a->fitness > b->fitness : a->id < b->id; };
  std::sort(ranked.begin(), ranked.end(), by_fitness);
  if (ranked.size() < size_t(config.parents)) {  // too few trained yet: the best simulated fill up
    std::vector<const Member*> simulated;
    for (const Member& m : members)
      if (!std::isfinite(m.fitness) && std::isfinite(m.simulated)) simulated.push_back(&m);
    std::sort(simulated.begin(), simulated.end(), [](const Member* a, const Member* b) {
      return a->simulated != b->simulated ? a->simulated > b->simulated : a->id < b->id;
    });
    for (const Member* m : simulated)
      if (ranked.size() < size_t(config.parents)) ranked.push_back(m);
  }
  if (ranked.size() > size_t(config.parents)) ranked.resize(size_t(config.parents));
  return ranked;
}

void Search::State::run_generation() {
  GenerationSummary sum;
  sum.generation = generation;
  const auto generate_start = Clock::now();
  GenerateOptions generate;
  generate.extra_ops = config.extra_ops;
  generate.constants = config.constants;
  const Variator variator(*preset, generate, config.limits);
  const std::vector<const Member*> pool = parents();

  std::vector<Json> records;
  struct Fresh {
    size_t record;
    Expr expr;
    double simulated = NAN;
  };
  std::vector<Fresh> fresh;
  size_t seed_index = 0, ramp = 0;
  const size_t wanted = size_t(std::max(1, config.population));
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (size_t attempt = 0; fresh.size() < wanted && attempt < wanted * 20; ++attempt) {
    Expr e;
    std::string origin;
    std::vector<uint64_t> from;
    if (generation == 0 && seed_index < config.seed_losses.size()) {
      e = parse(config.seed_losses[seed_index++]);
      origin = "seed";
    } else if (pool.size() < 2) {
      GenerateOptions at = generate;
      at.max_depth = 2 + int(ramp / 2) % std::max(1, config.init_depth - 1);
      e = random_expr(*preset, rng, at, ramp % 2 ? GrowMethod::Full : GrowMethod::Grow);
      ++ramp;
      origin = "random";
      if (!variator.within_limits(e)) continue;
    } else if (std::uniform_real_distribution<double>(0, 1)(rng) < config.crossover_rate) {
      const Member* a = pool[pick(pool.size())];
      const Member* b = pool[pick(pool.size())];
      e = variator.crossover(a->expr, b->expr, rng);
      origin = "crossover";
      from = {a->id, b->id};
    } else {
      const Member* a = pool[pick(pool.size())];
      Variation kind;
      e = variator.mutate(a->expr, rng, kind);
      origin = variation_name(kind);
      from = {a->id};
    }
    if (!e) continue;
    Json rec;
    rec["id"] = next_id++;
    rec["generation"] = generation;
    rec["origin"] = origin;
    rec["parents"] = from;
    rec["deap"] = to_deap(e, names);
    const auto dedup_start = Clock::now();
    const Expr canonical = canonicalize(e);
    const uint64_t hash = canonical->hash();
    rec["infix"] = to_infix(canonical, names);
    rec["canonical_hash"] = hex(hash);
    ++sum.generated;
    std::string duplicate;
    if (!seen_canonical.insert(hash).second) {
      duplicate = "duplicate (canonical form)";
    } else {
      const Fingerprint f = fingerprint(*preset, e);
      rec["fingerprint"] = {hex(f.grid), hex(f.offset_grid)};
      if (!fingerprints.insert(f)) duplicate = "duplicate (function)";
      else seen_fingerprints.push_back(f);
    }
    rec["timing"]["dedup_us"] = std::round(since(dedup_start) * 1e7) / 10;
    if (!duplicate.empty()) {
      rec["stage"] = "dedup";
      rec["verdict"] = "duplicate";
      rec["reason"] = duplicate;
      ++sum.duplicates;
      ++rejections[duplicate];
    } else {
      fresh.push_back({records.size(), e});
    }
    records.push_back(std::move(rec));
  }
  sum.generate_seconds = since(generate_start);

  // Convergence property verification.
  std::vector<Fresh> converging;
  ConvergenceOptions conv = config.convergence;
  conv.stop_at_first_failure = true;
  for (Fresh& f : fresh) {
    Json& rec = records[f.record];
    if (!config.convergence_stage) {
      converging.push_back(f);
      continue;
    }
    const auto t = Clock::now();
    const ConvergenceReport report = verify_convergence(candidate_loss(*preset, f.expr), *preset, conv);
    const double s = since(t);
    sum.convergence_seconds += s;
    rec["timing"]["convergence_us"] = std::round(s * 1e7) / 10;
    if (report.passed) {
      converging.push_back(f);
      continue;
    }
    rec["stage"] = "convergence";
    rec["verdict"] = "rejected";
    const PropertyCheck& failed = report.checks.back();
    rec["reason"] = failed.property;
    rec["witness"] = failed.detail;
    ++rejections["convergence: " + failed.property];
  }
  sum.convergence_passed = int(converging.size());

  // Model optimization simulation.
  std::vector<Fresh> surviving;
  for (Fresh& f : converging) {
    Json& rec = records[f.record];
    if (!config.simulation_stage) {
      surviving.push_back(f);
      continue;
    }
    const auto t = Clock::now();
    const SimulationResult sim = simulate_optimization(candidate_loss(*preset, f.expr), *preset, config.simulation);
    const double s = since(t);
    sum.simulation_seconds += s;
    rec["timing"]["simulation_us"] = std::round(s * 1e7) / 10;
    rec["simulation"] = {{"metric", sim.metric_name},
                         {"value", std::isfinite(sim.metric) ? Json(sim.metric) : Json(nullptr)},
                         {"reference", sim.reference}};
    if (sim.passed) {
      f.simulated = sim.metric;
      surviving.push_back(f);
      members.push_back({rec["id"].get<uint64_t>(), f.expr, rec["deap"], NAN, sim.metric});
      continue;
    }
    rec["stage"] = "simulation";
    rec["verdict"] = "rejected";
    rec["reason"] = std::isfinite(sim.metric) ? sim.metric_name + " below threshold" : "non-finite";
    rec["witness"] = sim.detail;
    ++rejections["simulation: " + rec["reason"].get<std::string>()];
  }
  sum.simulation_passed = int(surviving.size());

  // The top K survivors by simulation metric go to the proxy task.
  std::stable_sort(surviving.begin(), surviving.end(), [](const Fresh& a, const Fresh& b) {
    const double x = std::isfinite(a.simulated) ? a.simulated : -1, y = std::isfinite(b.simulated) ? b.simulated : -1;
    return x > y;
  });
  const size_t k = size_t(std::clamp(std::min(config.proxy_per_generation, config.budget - proxied), 0, int(surviving.size())));
  for (size_t i = k; i < surviving.size(); ++i) {
    Json& rec = records[surviving[i].record];
    rec["stage"] = "selection";
    rec["verdict"] = "not_selected";
    rec["reason"] = "rank " + std::to_string(i + 1) + " of " + std::to_string(surviving.size()) + " survivors";
  }
  std::vector<ProxyRequest> requests;
  std::vector<size_t> pending;  // indices into surviving that need training
  std::vector<ProxyResult> results(k);
  std::vector<char> reused(k, 0);
  const uint64_t proxy_seed = config.proxy_seed ? config.proxy_seed : config.seed;
  for (size_t i = 0; i < k; ++i) {
    const Json& rec = records[surviving[i].record];
    const std::string formula = rec["deap"];
    if (auto it = proxy_cache.find(formula); it != proxy_cache.end()) {
      results[i] = it->second;
      reused[i] = 1;
      continue;
    }
    requests.push_back({rec["id"].get<uint64_t>(), config.slot, formula, proxy_seed, ""});
    pending.push_back(i);
  }
  const auto proxy_start = Clock::now();
  const std::vector<ProxyResult> fresh_results =
      evaluate_parallel(*proxy, requests, config.workers, [&](size_t i, const ProxyResult& r) {
        Json line;
        line["candidate"] = requests[i].candidate;
        line["formula"] = requests[i].formula;
        line["result"] = result_json(r);
        append_durable(path("proxy.jsonl"), line.dump() + "\n");
        proxy_cache[requests[i].formula] = r;
        // Test hook: die like kill -9 right after the N-th persisted result.
        if (const char* n = std::getenv("LOSSFORGE_SEARCH_KILL_AFTER_PROXY"))
          if (++proxy_results_this_process >= std::atoi(n)) ::raise(SIGKILL);
      });
  sum.proxy_seconds = since(proxy_start);
  for (size_t j = 0; j < pending.size(); ++j) results[pending[j]] = fresh_results[j];
  std::vector<double> fitness_now;
  for (size_t i = 0; i < k; ++i) {
    Json& rec = records[surviving[i].record];
    const ProxyResult& r = results[i];
    rec["stage"] = "proxy";
    rec["verdict"] = r.status;
    if (!r.message.empty()) rec["reason"] = r.message;
    rec["proxy"] = result_json(r);
    if (reused[i]) rec["proxy"]["from_proxy_jsonl"] = true;
    rec["timing"]["proxy_s"] = r.seconds;
    if (r.status != "ok") ++rejections["proxy: " + r.status];
    const uint64_t id = rec["id"];
    for (Member& m : members)
      if (m.id == id && r.status == "ok") m.fitness = r.fitness;
    if (r.status == "ok") {
      rec["fitness"] = r.fitness;
      fitness_now.push_back(r.fitness);
    }
    ++proxied;
  }
  sum.proxied = int(k);
  sum.median = median(fitness_now);
  sum.best = NAN;
  for (const Member& m : members)
    if (std::isfinite(m.fitness) && !(m.fitness <= sum.best)) sum.best = m.fitness;
  // Members that can no longer be parents are dropped (bounded memory).
  if (members.size() > size_t(4 * std::max(config.parents, 16))) {
    std::vector<const Member*> keep = parents();
    std::unordered_set<uint64_t> ids;
    for (const Member* m : keep) ids.insert(m->id);
    std::erase_if(members, [&](const Member& m) { return !ids.count(m.id) && !std::isfinite(m.fitness); });
  }

  std::string lines;
  for (const Json& rec : records) lines += rec.dump() + "\n";
  append_durable(path("candidates.jsonl"), lines);
  summaries.push_back(sum);
  ++generation;
  write_checkpoint();
  write_results();

  if (log) {
    const Member* best = nullptr;
    for (const Member& m : members)
      if (std::isfinite(m.fitness) && (!best || m.fitness > best->fitness)) best = &m;
    *log << "gen " << sum.generation << " | generated " << sum.generated << " (" << rate(sum.generated, sum.generate_seconds)
         << "), duplicates " << sum.duplicates << " | convergence " << (sum.generated - sum.duplicates) << " -> "
         << sum.convergence_passed << " (" << rate(sum.generated - sum.duplicates, sum.convergence_seconds) << ")"
         << " | simulation " << sum.convergence_passed << " -> " << sum.simulation_passed << " ("
         << rate(sum.convergence_passed, sum.simulation_seconds) << ") | proxy " << sum.proxied << " ("
         << fixed(sum.proxy_seconds, 1) << " s) | budget " << proxied << "/" << config.budget << "\n";
    *log << "  best " << (best ? fixed(best->fitness) + "  " + best->deap : std::string("-")) << "\n  rejections:";
    for (const auto& [reason, count] : rejections) *log << " " << reason << " " << count << ";";
    *log << std::endl;
  }
}

void Search::State::write_checkpoint() const {
  Json j;
  j["version"] = 1;
  j["generation"] = generation;
  j["next_id"] = next_id;
  j["proxied"] = proxied;
  std::ostringstream r;
  r << rng;
  j["rng"] = r.str();
  j["candidates_jsonl_bytes"] = fs::exists(path("candidates.jsonl")) ? fs::file_size(path("candidates.jsonl")) : 0;
  Json seen = Json::array();
  for (uint64_t h : seen_canonical) seen.push_back(hex(h));
  std::sort(seen.begin(), seen.end());
  j["seen_canonical"] = seen;
  Json fps = Json::array();
  for (const Fingerprint& f : seen_fingerprints) fps.push_back({hex(f.grid), hex(f.offset_grid)});
  j["seen_fingerprints"] = fps;
  Json ms = Json::array();
  for (const Member& m : members)
    ms.push_back({{"id", m.id},
                  {"deap", m.deap},
                  {"fitness", std::isfinite(m.fitness) ? Json(m.fitness) : Json(nullptr)},
                  {"simulated", std::isfinite(m.simulated) ? Json(m.simulated) : Json(nullptr)}});
  j["members"] = ms;
  j["rejections"] = rejections;
  Json gens = Json::array();
  for (const GenerationSummary& s : summaries)
    gens.push_back({{"generation", s.generation}, {"generated", s.generated}, {"duplicates", s.duplicates},
                    {"convergence_passed", s.convergence_passed}, {"simulation_passed", s.simulation_passed},
                    {"proxied", s.proxied}, {"generate_seconds", s.generate_seconds},
                    {"convergence_seconds", s.convergence_seconds}, {"simulation_seconds", s.simulation_seconds},
                    {"proxy_seconds", s.proxy_seconds},
                    {"best", std::isfinite(s.best) ? Json(s.best) : Json(nullptr)},
                    {"median", std::isfinite(s.median) ? Json(s.median) : Json(nullptr)}});
  j["generations"] = gens;
  write_file_atomic(path("checkpoint.json"), j.dump(1) + "\n");
}

void Search::State::load_checkpoint() {
  // Proxy results already paid for, whether or not their generation finished.
  if (fs::exists(path("proxy.jsonl"))) {
    std::istringstream in(read_file(path("proxy.jsonl")));
    for (std::string line; std::getline(in, line);) {
      try {
        const Json j = Json::parse(line);
        proxy_cache[j.at("formula")] = result_from_json(j.at("result"));
      } catch (const std::exception&) {  // a line cut short by the crash: trained again
      }
    }
  }
  if (!fs::exists(path("checkpoint.json"))) {  // killed during generation 0
    if (fs::exists(path("candidates.jsonl"))) fs::resize_file(path("candidates.jsonl"), 0);
    return;
  }
  const Json j = Json::parse(read_file(path("checkpoint.json")));
  generation = j.at("generation");
  next_id = j.at("next_id");
  proxied = j.at("proxied");
  std::istringstream r(j.at("rng").get<std::string>());
  r >> rng;
  fs::resize_file(path("candidates.jsonl"), j.at("candidates_jsonl_bytes").get<uintmax_t>());
  for (const Json& h : j.at("seen_canonical")) seen_canonical.insert(unhex(h));
  for (const Json& f : j.at("seen_fingerprints")) {
    const Fingerprint fp{unhex(f.at(0)), unhex(f.at(1))};
    seen_fingerprints.push_back(fp);
    fingerprints.insert(fp);
  }
  for (const Json& m : j.at("members"))
    members.push_back({m.at("id"), parse(m.at("deap")), m.at("deap"), m.at("fitness").is_null() ? NAN : m.at("fitness").get<double>(),
                       m.at("simulated").is_null() ? NAN : m.at("simulated").get<double>()});
  rejections = j.at("rejections").get<std::map<std::string, int>>();
  for (const Json& g : j.at("generations")) {
    GenerationSummary s;
    s.generation = g.at("generation");
    s.generated = g.at("generated");
    s.duplicates = g.at("duplicates");
    s.convergence_passed = g.at("convergence_passed");
    s.simulation_passed = g.at("simulation_passed");
    s.proxied = g.at("proxied");
    s.generate_seconds = g.at("generate_seconds");
    s.convergence_seconds = g.at("convergence_seconds");
    s.simulation_seconds = g.at("simulation_seconds");
    s.proxy_seconds = g.at("proxy_seconds");
    s.best = g.at("best").is_null() ? NAN : g.at("best").get<double>();
    s.median = g.at("median").is_null() ? NAN : g.at("median").get<double>();
    summaries.push_back(s);
  }
}

void Search::State::write_results() const {
  std::vector<const Member*> ranked;
  for (const Member& m : members)
    if (std::isfinite(m.fitness)) ranked.push_back(&m);
  std::sort(ranked.begin(), ranked.end(), [](const Member* a, const Member* b) {
    return a->fitness != b->fitness ? a->fitness > b->fitness : a->id < b->id;
  });
  if (ranked.size() > 5) ranked.resize(5);
  fs::create_directories(path("best"));
  std::vector<ReportEntry> best;
  for (size_t i = 0; i < ranked.size(); ++i) {
    const Member& m = *ranked[i];
    Loss loss = candidate_loss(*preset, canonicalize(m.expr), "best_" + std::to_string(i + 1));
    std::ostringstream text;
    text << "# Found by `lossforge search` (slot " << config.slot << ", preset " << preset->name << "), candidate " << m.id
         << ", proxy fitness (AP) " << fixed(m.fitness) << ".\n# DEAP form: " << m.deap << "\n"
         << to_text(loss) << "\n";
    const std::string file = "best/best_" + std::to_string(i + 1) + ".loss";
    write_file_atomic(path(file), text.str());
    best.push_back({m.id, m.deap, to_infix(canonicalize(m.expr), names), m.fitness, file});
  }
  ReportData data;
  data.title = "lossforge search: slot " + config.slot + " (" + preset->name + ")";
  data.proxy = proxy->describe();
  data.seed = config.seed;
  data.workers = config.workers;
  data.budget = config.budget;
  data.proxied = proxied;
  data.generations = summaries;
  data.rejections = rejections;
  data.best = best;
  data.retrain = read_retrain_table(dir);
  write_file_atomic(path("report.md"), render_report(data, dir));
}

Search::Search(std::unique_ptr<State> state) : state_(std::move(state)) {}
Search::Search(Search&&) noexcept = default;
Search::~Search() = default;

Search::Search(const SearchConfig& config, std::unique_ptr<ProxyEvaluator> proxy, std::string run_dir, std::ostream* log)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.config = config;
  s.preset = &search_preset(config);
  s.config.preset = s.preset->name;
  if (!s.config.proxy_seed) s.config.proxy_seed = config.seed;
  s.proxy = std::move(proxy);
  s.dir = std::move(run_dir);
  s.log = log;
  s.names = terminal_names(*s.preset);
  s.rng.seed(config.seed);
  if (fs::exists(s.path("config.json"))) throw InputError("search: " + s.dir + " already holds a run (use --resume)");
  for (const std::string& text : config.seed_losses) s.parse(text);  // bad seeds fail now, not in generation 0
  fs::create_directories(s.dir);
  write_file_atomic(s.path("config.json"), config_json(s.config).dump(1) + "\n");
}

SearchConfig Search::saved_config(const std::string& run_dir) {
  const std::string file = run_dir + "/config.json";
  if (!fs::exists(file)) throw InputError("search: " + run_dir + " holds no run (no config.json)");
  try {
    return config_from_json(Json::parse(read_file(file)));
  } catch (const nlohmann::json::exception& e) {
    throw InputError("search: bad " + file + ": " + e.what());
  }
}

Search Search::resume(const std::string& run_dir, std::unique_ptr<ProxyEvaluator> proxy, std::ostream* log, int workers) {
  auto s = std::make_unique<State>();
  s->config = saved_config(run_dir);
  if (workers > 0) s->config.workers = workers;
  s->preset = &search_preset(s->config);
  s->proxy = std::move(proxy);
  s->dir = run_dir;
  s->log = log;
  s->names = terminal_names(*s->preset);
  s->rng.seed(s->config.seed);
  try {
    s->load_checkpoint();
  } catch (const nlohmann::json::exception& e) {
    throw InputError("search: bad checkpoint in " + run_dir + ": " + e.what());
  }
  if (log) *log << "resuming " << run_dir << " at generation " << s->generation << ", " << s->proxied << "/"
                << s->config.budget << " proxy evaluations done, " << s->proxy_cache.size() << " results on file\n";
  return Search(std::move(s));
}

void Search::run() {
  State& s = *state_;
  if (s.log) *s.log << "search: slot " << s.config.slot << ", preset " << s.preset->name << ", " << s.proxy->describe() << "\n";
  while (s.proxied < s.config.budget && s.generation < s.config.max_generations) s.run_generation();
  s.write_results();
  if (s.log) *s.log << "done: " << s.proxied << " proxy evaluations in " << s.generation << " generations; " << s.dir
                    << "/report.md\n";
}

void Search::write_report() const { state_->write_results(); }

const SearchConfig& Search::config() const { return state_->config; }
const std::vector<GenerationSummary>& Search::generations() const { return state_->summaries; }

}  // namespace lossforge
