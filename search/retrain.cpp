#include "search/retrain.hpp"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "compiler/error.hpp"
#include "runtime/files.hpp"

namespace lossforge {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// The JSON objects of a .jsonl file; lines cut short by a crash are skipped.
std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    try {
      Json j = Json::parse(line);
      if (j.is_object()) out.push_back(std::move(j));
    } catch (const std::exception&) {
    }
  }
  return out;
}

// Numbers as the option parser reads them back: integers without a fraction.
std::string number(double v) {
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

double nan_if_null(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || !it->is_number() ? NAN : it->get<double>();
}

Json finite_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json heldout_json(const HeldoutSynth& h) {
  return {{"train", h.train},
          {"val", h.val},
          {"seed", h.seed},
          {"size", h.size},
          {"min_objects", h.min_objects},
          {"max_objects", h.max_objects},
          {"min_object_size", h.min_object_size},
          {"max_object_size", h.max_object_size},
          {"clutter", h.clutter},
          {"noise", h.noise}};
}

HeldoutSynth heldout_from_json(const Json& j) {
  HeldoutSynth h;
  h.train = j.value("train", h.train);
  h.val = j.value("val", h.val);
  h.seed = j.value("seed", h.seed);
  h.size = j.value("size", h.size);
  h.min_objects = j.value("min_objects", h.min_objects);
  h.max_objects = j.value("max_objects", h.max_objects);
  h.min_object_size = j.value("min_object_size", h.min_object_size);
  h.max_object_size = j.value("max_object_size", h.max_object_size);
  h.clutter = j.value("clutter", h.clutter);
  h.noise = j.value("noise", h.noise);
  return h;
}

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

// Mean and sample standard deviation (n - 1); NaN when there are too few values.
void mean_std(const std::vector<double>& v, double& mean, double& std) {
  mean = std = NAN;
  if (v.empty()) return;
  double sum = 0;
  for (double x : v) sum += x;
  mean = sum / double(v.size());
  if (v.size() < 2) return;
  double squares = 0;
  for (double x : v) squares += (x - mean) * (x - mean);
  std = std::sqrt(squares / double(v.size() - 1));
}

}  // namespace

std::vector<std::string> synth_arguments(const HeldoutSynth& h) {
  return {"--train", std::to_string(h.train), "--val", std::to_string(h.val), "--seed", std::to_string(h.seed),
          "--size", std::to_string(h.size), "--min-objects", std::to_string(h.min_objects), "--max-objects",
          std::to_string(h.max_objects), "--min-object-size", number(h.min_object_size), "--max-object-size",
          number(h.max_object_size), "--clutter", std::to_string(h.clutter), "--noise", number(h.noise)};
}

void save_retrain_config(const std::string& run_dir, const RetrainConfig& c, const std::string& data_used,
                         const std::string& trainer) {
  Json j;
  j["top"] = c.top;
  j["include_seeds"] = c.include_seeds;
  j["seeds"] = c.seeds;
  j["first_seed"] = c.first_seed;
  j["data"] = c.data;
  j["heldout"] = heldout_json(c.heldout);
  j["epochs"] = c.epochs;
  j["max_images"] = c.max_images;
  if (!data_used.empty()) j["data_used"] = data_used;
  if (!trainer.empty()) j["trainer"] = trainer;
  write_file_atomic(run_dir + "/retrain.json", j.dump(1) + "\n");
}

RetrainConfig load_retrain_config(const std::string& run_dir, const RetrainConfig& fallback) {
  const std::string file = run_dir + "/retrain.json";
  if (!fs::exists(file)) return fallback;
  try {
    const Json j = Json::parse(read_file(file));
    RetrainConfig c;
    c.top = j.at("top");
    c.include_seeds = j.value("include_seeds", false);  // runs before the key existed
    c.seeds = j.at("seeds");
    c.first_seed = j.at("first_seed");
    c.data = j.at("data");
    c.heldout = heldout_from_json(j.at("heldout"));
    c.epochs = j.at("epochs");
    c.max_images = j.at("max_images");
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw InputError("retrain: bad " + file + ": " + e.what());
  }
}

std::vector<RetrainLoss> retrain_losses(const std::string& run_dir, int top, bool include_seeds) {
  std::vector<RetrainLoss> losses{{"default", 0, "", "", NAN}};
  std::map<uint64_t, std::string> origins;
  for (const Json& c : read_jsonl(run_dir + "/candidates.jsonl"))
    if (c.contains("id") && c.contains("origin")) origins[c["id"].get<uint64_t>()] = c["origin"].get<std::string>();
  std::vector<RetrainLoss> trained;
  std::set<std::string> formulas;
  for (const Json& p : read_jsonl(run_dir + "/proxy.jsonl")) {
    const Json& r = p.at("result");
    if (r.at("status") != "ok" || !formulas.insert(p.at("formula").get<std::string>()).second) continue;
    const uint64_t id = p.at("candidate");
    if (!include_seeds && origins.count(id) && origins[id] == "seed") continue;
    trained.push_back({"cand-" + std::to_string(id), id, origins.count(id) ? origins[id] : "", p.at("formula"),
                       r.at("fitness").get<double>()});
  }
  std::stable_sort(trained.begin(), trained.end(), [](const RetrainLoss& a, const RetrainLoss& b) {
    return a.proxy_fitness != b.proxy_fitness ? a.proxy_fitness > b.proxy_fitness : a.candidate < b.candidate;
  });
  for (size_t i = 0; i < trained.size() && i < size_t(std::max(0, top)); ++i) losses.push_back(trained[i]);
  return losses;
}

std::string prepare_heldout_data(const std::string& run_dir, const RetrainConfig& config,
                                 const std::vector<std::string>& synth_command, std::ostream* log) {
  if (!config.data.empty()) {
    if (!fs::exists(config.data + "/annotations/instances_train.json") ||
        !fs::exists(config.data + "/annotations/instances_val.json"))
      throw InputError("retrain: data folder " + config.data + " holds no annotations/instances_{train,val}.json");
    return config.data;
  }
  const std::string dir = run_dir + "/heldout", stamp = dir + "/synth-options.txt";
  const std::string options = joined(synth_arguments(config.heldout));
  if (fs::exists(stamp) && read_file(stamp) == options + "\n" && fs::exists(dir + "/annotations/instances_val.json"))
    return dir;
  std::error_code ec;
  fs::remove_all(dir, ec);  // made with other options, or cut short
  fs::create_directories(dir);
  std::vector<std::string> args = synth_command;
  args.insert(args.end(), {"--out", dir});
  for (const std::string& a : synth_arguments(config.heldout)) args.push_back(a);
  if (log) *log << "retrain: generating held-out data: " << joined(args) << std::endl;
  int status = 0;
  const std::string log_file = run_dir + "/heldout-synth.log";
  const std::string failure = run_child(args, log_file, 3600, status);
  if (!failure.empty() || status != 0)
    throw Error("retrain: generating the held-out data failed (" + (failure.empty() ? "exit " + std::to_string(status) : failure) +
                "), see " + log_file);
  write_file_atomic(stamp, options + "\n");
  return dir;
}

int run_retrain(const std::string& run_dir, const std::string& slot, const RetrainConfig& config,
                const std::string& data_used, ProxyEvaluator& evaluator, int workers, std::ostream* log) {
  if (config.seeds <= 0) return 0;
  save_retrain_config(run_dir, config, data_used, evaluator.describe());
  const std::vector<RetrainLoss> losses = retrain_losses(run_dir, config.top, config.include_seeds);
  std::set<std::pair<std::string, uint64_t>> done;
  for (const RetrainRecord& r : read_retrain_records(run_dir)) done.insert({r.formula, r.seed});
  std::vector<ProxyRequest> requests;
  std::vector<const RetrainLoss*> loss_of;
  for (const RetrainLoss& loss : losses)
    for (int i = 0; i < config.seeds; ++i) {
      const uint64_t seed = config.first_seed + uint64_t(i);
      if (done.count({loss.formula, seed})) continue;
      requests.push_back({loss.candidate, slot, loss.formula, seed, loss.name + "-seed-" + std::to_string(seed)});
      loss_of.push_back(&loss);
    }
  if (log) *log << "retrain: " << losses.size() << " losses (default + top " << losses.size() - 1 << ") x " << config.seeds
                << " seeds, " << requests.size() << " trainings to do (" << done.size() << " on file); "
                << evaluator.describe() << std::endl;
  const std::string path = run_dir + "/retrain.jsonl";
  // A line cut short by a crash gets its end, so the next result starts a line of its own.
  if (fs::exists(path) && fs::file_size(path) > 0) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(-1, std::ios::end);
    if (in.get() != '\n') append_durable(path, "\n");
  }
  int written = 0;
  evaluate_parallel(evaluator, requests, workers, [&](size_t i, const ProxyResult& r) {
    const RetrainLoss& loss = *loss_of[i];
    Json line;
    line["loss"] = loss.name;
    line["candidate"] = loss.candidate;
    line["origin"] = loss.origin;
    line["proxy_fitness"] = finite_or_null(loss.proxy_fitness);
    line["formula"] = loss.formula;
    line["seed"] = requests[i].seed;
    line["status"] = r.status;
    if (!r.message.empty()) line["message"] = r.message;
    const auto metric = [&](const char* key) {
      const auto it = r.metrics.find(key);
      return r.status == "ok" && it != r.metrics.end() ? finite_or_null(it->second) : Json(nullptr);
    };
    line["AP"] = metric("AP");
    line["AP50"] = metric("AP50");
    line["seconds"] = r.seconds;
    line["metrics"] = r.metrics;
    append_durable(path, line.dump() + "\n");
    if (log) *log << "retrain " << loss.name << " seed " << requests[i].seed << ": " << r.status
                  << (r.status == "ok" ? " AP " + fixed(r.metrics.count("AP") ? r.metrics.at("AP") : NAN) : ": " + r.message)
                  << " (" << fixed(r.seconds, 1) << " s)" << std::endl;
    // Test hook: die like kill -9 right after the N-th persisted result.
    if (const char* n = std::getenv("LOSSFORGE_RETRAIN_KILL_AFTER"))
      if (++written >= std::atoi(n)) ::raise(SIGKILL);
  });
  return int(requests.size());
}

std::vector<RetrainRecord> read_retrain_records(const std::string& run_dir) {
  std::vector<RetrainRecord> out;
  for (const Json& j : read_jsonl(run_dir + "/retrain.jsonl")) {
    try {
      RetrainRecord r;
      r.name = j.at("loss");
      r.candidate = j.at("candidate");
      r.origin = j.value("origin", "");
      r.proxy_fitness = nan_if_null(j, "proxy_fitness");
      r.formula = j.at("formula");
      r.seed = j.at("seed");
      r.status = j.at("status");
      r.message = j.value("message", "");
      r.ap = nan_if_null(j, "AP");
      r.ap50 = nan_if_null(j, "AP50");
      r.seconds = j.value("seconds", 0.0);
      out.push_back(std::move(r));
    } catch (const nlohmann::json::exception&) {  // not a line of ours: ignored like a cut one
    }
  }
  return out;
}

std::vector<RetrainRow> summarize_retrain(const std::vector<RetrainRecord>& records) {
  std::vector<RetrainRow> rows;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> values;  // formula -> AP, AP50 of ok seeds
  std::map<std::string, size_t> row_of;                                              // formula -> row
  for (const RetrainRecord& r : records) {
    auto [it, fresh] = row_of.emplace(r.formula, rows.size());
    if (fresh) {
      RetrainRow row;
      row.name = r.name;
      row.origin = r.origin;
      row.formula = r.formula;
      row.candidate = r.candidate;
      row.proxy_fitness = r.formula.empty() ? NAN : r.proxy_fitness;
      rows.push_back(row);
    }
    RetrainRow& row = rows[it->second];
    if (r.status == "ok" && std::isfinite(r.ap)) {
      ++row.ok;
      values[r.formula].first.push_back(r.ap);
      if (std::isfinite(r.ap50)) values[r.formula].second.push_back(r.ap50);
    } else {
      ++row.failed;
    }
  }
  for (RetrainRow& row : rows) {
    mean_std(values[row.formula].first, row.ap_mean, row.ap_std);
    mean_std(values[row.formula].second, row.ap50_mean, row.ap50_std);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const RetrainRow& a, const RetrainRow& b) {
    if (a.formula.empty() != b.formula.empty()) return a.formula.empty();
    const double x = std::isfinite(a.proxy_fitness) ? a.proxy_fitness : -1, y = std::isfinite(b.proxy_fitness) ? b.proxy_fitness : -1;
    return x != y ? x > y : a.name < b.name;
  });
  const RetrainRow* base = !rows.empty() && rows.front().formula.empty() ? &rows.front() : nullptr;
  for (RetrainRow& row : rows) {
    row.delta_ap = row.delta_ap50 = NAN;
    row.beyond_spread = "-";
    if (&row == base || !base) continue;
    row.delta_ap = row.ap_mean - base->ap_mean;
    row.delta_ap50 = row.ap50_mean - base->ap50_mean;
    if (row.ok >= 2 && base->ok >= 2 && std::isfinite(row.delta_ap))
      row.beyond_spread = std::abs(row.delta_ap) > std::max(row.ap_std, base->ap_std) ? "yes" : "no";
  }
  return rows;
}

RetrainTable read_retrain_table(const std::string& run_dir) {
  RetrainTable table;
  table.ran = fs::exists(run_dir + "/retrain.jsonl");
  if (!table.ran) return table;
  table.rows = summarize_retrain(read_retrain_records(run_dir));
  if (!fs::exists(run_dir + "/retrain.json")) return table;
  Json j;
  try {
    j = Json::parse(read_file(run_dir + "/retrain.json"));
  } catch (const std::exception&) {
    return table;
  }
  const RetrainConfig c = load_retrain_config(run_dir, {});
  std::ostringstream s;
  if (!c.data.empty()) s << "Held-out data: `" << c.data << "` (retrain.data).";
  else if (j.value("data_used", "").empty()) s << "Held-out data: none (the simulation proxy draws its own).";
  else s << "Held-out data: `heldout/`, generated by `lossforge data synth " << joined(synth_arguments(c.heldout)) << "`.";
  s << " Every loss trained from scratch with seeds " << c.first_seed << ".." << c.first_seed + uint64_t(std::max(c.seeds, 1)) - 1
    << ", " << (c.epochs > 0 ? std::to_string(c.epochs) + " epoch(s)" : std::string("the proxy's epochs"))
    << (c.max_images > 0 ? ", the first " + std::to_string(c.max_images) + " training images" : std::string());
  if (j.contains("trainer")) s << "; " << j["trainer"].get<std::string>();
  s << ".";
  table.setup = s.str();
  return table;
}

}  // namespace lossforge
