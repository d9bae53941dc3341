// The retraining stage (search/retrain.hpp): every (loss, seed) pair trained
// once and recorded, resuming after an interruption trains nothing twice,
// failures are results, the mean ± std table is right on known numbers; and
// through `lossforge search`: the table ends a run (report and output), a kill
// -9 during retraining resumes without training anything twice, the held-out
// data is generated and handed to the trainer, --detector reaches the trainer.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "compiler/error.hpp"
#include "search/engine.hpp"
#include "search/report.hpp"
#include "search/retrain.hpp"
#include "fake_trainer_cli.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using search_test::lines;
using search_test::text_of;

fs::path test_root() { return fs::temp_directory_path() / ("lossforge-retrain-test-" + std::to_string(::getpid())); }

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = test_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Removes this process's folders when the tests end.
class RemoveTestRoot : public ::testing::Environment {
 public:
  void TearDown() override { fs::remove_all(test_root()); }
};
[[maybe_unused]] ::testing::Environment* const remove_test_root = ::testing::AddGlobalTestEnvironment(new RemoveTestRoot);

// A finished run's proxy results as the engine writes them: candidates 3, 5,
// 8 ok (AP 0.30, 0.50, 0.40), 6 non-finite.
void write_fake_run(const fs::path& run) {
  std::ofstream proxy(run / "proxy.jsonl");
  auto result = [](const char* status, double fitness) {
    return Json{{"status", status}, {"fitness", fitness}, {"metrics", Json::object()}, {"seconds", 1.0}};
  };
  proxy << Json{{"candidate", 3}, {"formula", "Neg(Div(I,U))"}, {"result", result("ok", 0.30)}}.dump() << "\n";
  proxy << Json{{"candidate", 5}, {"formula", "Sub(1,Div(I,U))"}, {"result", result("ok", 0.50)}}.dump() << "\n";
  proxy << Json{{"candidate", 6}, {"formula", "Log(I)"}, {"result", result("nonfinite", 0)}}.dump() << "\n";
  proxy << Json{{"candidate", 8}, {"formula", "Neg(Log(Div(I,U)))"}, {"result", result("ok", 0.40)}}.dump() << "\n";
  std::ofstream candidates(run / "candidates.jsonl");
  for (auto [id, origin] : std::vector<std::pair<int, const char*>>{{3, "seed"}, {5, "crossover"}, {6, "random"}, {8, "hoist"}})
    candidates << Json{{"id", id}, {"origin", origin}}.dump() << "\n";
}

// Counts what it trains; AP from the formula and seed; "Neg(Log(Div(I,U)))"
// fails with seed 2 (an exception: the evaluator itself breaking).
class FakeEvaluator : public ProxyEvaluator {
 public:
  ProxyResult evaluate(const ProxyRequest& r) override {
    {
      std::lock_guard lock(mutex_);
      ++trained[{r.formula, r.seed}];
      names.insert(r.run_name);
    }
    if (r.formula == "Neg(Log(Div(I,U)))" && r.seed == 2) throw Error("trainer crashed (pretend)");
    ProxyResult result;
    result.status = "ok";
    result.fitness = 0.1 * double(r.formula.size() % 5) + 0.01 * double(r.seed);
    result.metrics = {{"AP", result.fitness}, {"AP50", result.fitness + 0.2}};
    return result;
  }
  std::string describe() const override { return "fake evaluator"; }

  std::map<std::pair<std::string, uint64_t>, int> trained;
  std::set<std::string> names;

 private:
  std::mutex mutex_;
};

RetrainRecord record(const std::string& formula, uint64_t seed, const char* status, double ap, double ap50,
                     double proxy_fitness) {
  RetrainRecord r;
  r.name = formula.empty() ? "default" : "cand-" + formula;
  r.formula = formula;
  r.seed = seed;
  r.status = status;
  r.ap = ap;
  r.ap50 = ap50;
  r.proxy_fitness = proxy_fitness;
  return r;
}

TEST(RetrainStats, MeanStdDeltaAndSpreadOnKnownNumbers) {
  const std::vector<RetrainRecord> records = {
      record("B", 1, "ok", 0.21, 0.40, 0.2), record("", 1, "ok", 0.10, 0.30, NAN), record("A", 1, "ok", 0.50, 0.70, 0.9),
      record("", 2, "ok", 0.20, 0.40, NAN),  record("A", 2, "ok", 0.55, 0.75, 0.9), record("B", 2, "ok", 0.19, 0.40, 0.2),
      record("", 3, "ok", 0.30, 0.50, NAN),  record("A", 3, "ok", 0.60, 0.80, 0.9), record("B", 3, "failed", NAN, NAN, 0.2),
      record("C", 1, "ok", 0.90, 0.95, 0.5), record("C", 2, "nonfinite", NAN, NAN, 0.5)};
  const std::vector<RetrainRow> rows = summarize_retrain(records);
  ASSERT_EQ(rows.size(), 4u);
  // The default first, then by proxy fitness.
  EXPECT_EQ(rows[0].formula, "");
  EXPECT_EQ(rows[1].formula, "A");
  EXPECT_EQ(rows[2].formula, "C");
  EXPECT_EQ(rows[3].formula, "B");
  const RetrainRow &base = rows[0], &a = rows[1], &c = rows[2], &b = rows[3];
  EXPECT_NEAR(base.ap_mean, 0.20, 1e-12);
  EXPECT_NEAR(base.ap_std, 0.10, 1e-12) << "sample std (n - 1)";
  EXPECT_NEAR(base.ap50_mean, 0.40, 1e-12);
  EXPECT_NEAR(base.ap50_std, 0.10, 1e-12);
  EXPECT_EQ(base.beyond_spread, "-");
  EXPECT_TRUE(std::isnan(base.delta_ap));
  EXPECT_NEAR(a.ap_mean, 0.55, 1e-12);
  EXPECT_NEAR(a.ap_std, 0.05, 1e-12);
  EXPECT_NEAR(a.delta_ap, 0.35, 1e-12);
  EXPECT_NEAR(a.delta_ap50, 0.35, 1e-12);
  EXPECT_EQ(a.ok, 3);
  EXPECT_EQ(a.failed, 0);
  EXPECT_EQ(a.beyond_spread, "yes") << "0.35 > max(0.05, 0.10)";
  EXPECT_NEAR(b.ap_mean, 0.20, 1e-12);
  EXPECT_NEAR(b.ap_std, std::sqrt(2 * 0.01 * 0.01), 1e-12);
  EXPECT_EQ(b.ok, 2);
  EXPECT_EQ(b.failed, 1);
  EXPECT_EQ(b.beyond_spread, "no") << "Δ 0 is within the spread";
  EXPECT_EQ(c.ok, 1);
  EXPECT_EQ(c.failed, 1);
  EXPECT_NEAR(c.ap_mean, 0.90, 1e-12);
  EXPECT_TRUE(std::isnan(c.ap_std));
  EXPECT_EQ(c.beyond_spread, "-") << "one seed has no spread";

  RetrainTable table;
  table.ran = true;
  table.rows = rows;
  const std::string section = render_retrain_section(table);
  EXPECT_NE(section.find("| 0.5500 ± 0.0500 | 0.7500 ± 0.0500 | 3/0 | +0.3500 | +0.3500 | yes |"), std::string::npos)
      << section;
  EXPECT_NE(section.find("| 0.2000 ± 0.1000 |"), std::string::npos) << section;
  EXPECT_NE(section.find("0.9000 (1 seed)"), std::string::npos) << section;
  EXPECT_NE(render_retrain_section({}).find("Not run"), std::string::npos);
}

TEST(RetrainStage, TrainsEveryLossAndSeedOnceAndResumesWithoutRetraining) {
  const fs::path run = fresh_dir("stage");
  write_fake_run(run);
  RetrainConfig config;
  config.top = 2;
  config.seeds = 3;
  // The default, then the top 2 ok candidates by proxy AP: 5 (0.50), 8 (0.40).
  const std::vector<RetrainLoss> losses = retrain_losses(run.string(), config.top);
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_EQ(losses[0].name, "default");
  EXPECT_EQ(losses[0].formula, "");
  EXPECT_EQ(losses[1].name, "cand-5");
  EXPECT_EQ(losses[1].origin, "crossover");
  EXPECT_EQ(losses[2].name, "cand-8");
  // Candidate 3 (AP 0.30) is a seeded known loss: retrained only on request.
  EXPECT_EQ(retrain_losses(run.string(), 3).size(), 3u);
  const std::vector<RetrainLoss> with_seeds = retrain_losses(run.string(), 3, /*include_seeds=*/true);
  ASSERT_EQ(with_seeds.size(), 4u);
  EXPECT_EQ(with_seeds[3].name, "cand-3");
  EXPECT_EQ(with_seeds[3].origin, "seed");

  FakeEvaluator first;
  EXPECT_EQ(run_retrain(run.string(), "reg", config, "", first, 2, nullptr), 9);
  EXPECT_EQ(first.trained.size(), 9u);
  for (const auto& [pair, times] : first.trained) EXPECT_EQ(times, 1) << pair.first << " seed " << pair.second;
  EXPECT_TRUE(first.names.count("default-seed-1") && first.names.count("cand-8-seed-3")) << "run folders by loss and seed";
  const std::vector<RetrainRecord> all = read_retrain_records(run.string());
  ASSERT_EQ(all.size(), 9u);
  std::set<std::pair<std::string, uint64_t>> pairs;
  for (const RetrainRecord& r : all) pairs.insert({r.formula, r.seed});
  EXPECT_EQ(pairs.size(), 9u);
  // The evaluator's exception is a recorded failure, with its message.
  int failed = 0;
  for (const RetrainRecord& r : all)
    if (r.status != "ok") {
      ++failed;
      EXPECT_EQ(r.name, "cand-8");
      EXPECT_EQ(r.seed, 2u);
      EXPECT_EQ(r.status, "failed");
      EXPECT_NE(r.message.find("crashed"), std::string::npos) << r.message;
      EXPECT_TRUE(std::isnan(r.ap));
    }
  EXPECT_EQ(failed, 1);
  const RetrainTable table = read_retrain_table(run.string());
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(table.rows[2].name, "cand-8");
  EXPECT_EQ(table.rows[2].ok, 2);
  EXPECT_EQ(table.rows[2].failed, 1);

  // An interruption: four results on file, the fifth cut short mid-line.
  const std::vector<std::string> written = lines(run / "retrain.jsonl");
  {
    std::ofstream cut(run / "retrain.jsonl", std::ios::trunc);
    for (size_t i = 0; i < 4; ++i) cut << written[i] << "\n";
    cut << written[4].substr(0, written[4].size() / 2);
  }
  std::set<std::pair<std::string, uint64_t>> kept;
  for (const RetrainRecord& r : read_retrain_records(run.string())) kept.insert({r.formula, r.seed});
  ASSERT_EQ(kept.size(), 4u);
  FakeEvaluator second;
  EXPECT_EQ(run_retrain(run.string(), "reg", config, "", second, 2, nullptr), 5);
  for (const auto& [pair, times] : second.trained) {
    EXPECT_EQ(times, 1);
    EXPECT_FALSE(kept.count(pair)) << pair.first << " seed " << pair.second << " trained twice";
  }
  std::set<std::pair<std::string, uint64_t>> after;
  for (const RetrainRecord& r : read_retrain_records(run.string())) after.insert({r.formula, r.seed});
  EXPECT_EQ(after, pairs);
  EXPECT_EQ(read_retrain_records(run.string()).size(), 9u);

  // Finished: nothing more to train, the failure included. More seeds: only the new ones.
  FakeEvaluator third;
  EXPECT_EQ(run_retrain(run.string(), "reg", config, "", third, 1, nullptr), 0);
  config.seeds = 4;
  EXPECT_EQ(run_retrain(run.string(), "reg", config, "", third, 1, nullptr), 3);
  for (const auto& [pair, times] : third.trained) EXPECT_EQ(pair.second, 4u);
}

TEST(RetrainStage, SimulationProxyTrainsTheDefaultAsThePresetsReferenceLoss) {
  const fs::path run = fresh_dir("sim");
  write_fake_run(run);
  RetrainConfig config;
  config.top = 1;
  config.seeds = 2;
  SearchConfig search;
  search.slot = "reg";
  auto proxy = make_simulation_proxy(search_preset(search));
  EXPECT_EQ(run_retrain(run.string(), "reg", config, "", *proxy, 2, nullptr), 4);
  const std::vector<RetrainRecord> records = read_retrain_records(run.string());
  ASSERT_EQ(records.size(), 4u);
  for (const RetrainRecord& r : records) {
    EXPECT_EQ(r.status, "ok") << r.name << ": " << r.message;
    EXPECT_GT(r.ap, 0) << r.name;
  }
}

TEST(RetrainStage, HeldoutOptionsDifferFromTheBundledData) {
  const std::vector<std::string> args = synth_arguments(HeldoutSynth{});
  auto value = [&](const std::string& option) {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == option) return args[i + 1];
    return std::string("(missing)");
  };
  EXPECT_EQ(value("--seed"), "7");
  EXPECT_EQ(value("--max-objects"), "8");
  EXPECT_EQ(value("--noise"), "0.1");
  RetrainConfig with_data;
  with_data.data = (fs::temp_directory_path() / "no-such-lossforge-data").string();
  EXPECT_THROW(prepare_heldout_data(fresh_dir("nodata").string(), with_data, {"true"}, nullptr), InputError);
}

TEST(SearchDetectors, ClassificationPresetOfEachDetector) {
  EXPECT_EQ(cls_preset_of("fcos"), "binary_cls");
  EXPECT_EQ(cls_preset_of("atss"), "binary_cls");
  EXPECT_EQ(cls_preset_of("faster_rcnn"), "multi_cls");
  EXPECT_THROW(cls_preset_of("yolo"), InputError);
  SearchConfig c;
  c.detector = "faster_rcnn";
  EXPECT_EQ(search_preset(c).name, "multi_cls");
  c.slot = "reg";
  EXPECT_EQ(search_preset(c).name, "reg");
}

// The trainer's contract (arguments in, RUN/metrics.json and an exit status
// out); logs "detector|data|formula|seed" per training. AP from the text.
constexpr const char* kFakeTrainer = R"SH(#!/bin/sh
out=""; formula="default"; data=""; seed=""; detector=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --data) data="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --detector) detector="$2"; shift ;;
    --cls-loss|--reg-loss) formula="$2"; shift ;;
    *) ;;
  esac
  shift
done
mkdir -p "$out"
echo "$detector|$data|$formula|$seed" >> "$FAKE_TRAIN_LOG"
ap=$(printf '%s %s' "$formula" "$seed" | cksum | awk '{ printf "0.%03d", $1 % 1000 }')
echo "{\"status\":\"ok\",\"message\":\"\",\"AP\":$ap,\"AP50\":$ap,\"seconds\":0.01}" > "$out/metrics.json"
)SH";

class SearchRetrainCli : public search_test::FakeTrainerCli {
 protected:
  SearchRetrainCli() : FakeTrainerCli(test_root() / "cli", kFakeTrainer) {}
};

TEST_F(SearchRetrainCli, SimulationRunEndsWithTheTableAndRetrainOnlyAddsSeeds) {
  const fs::path run = dir_ / "run";
  ASSERT_EQ(lossforge("", "search --slot reg --proxy sim --seed 3 --budget 3 --population 60 --retrain-seeds 2 "
                          "--retrain-top 1 --out " + run.string()),
            0)
      << output();
  EXPECT_EQ(lines(run / "retrain.jsonl").size(), 4u) << "default + top 1, 2 seeds each";
  const std::string report = text_of(run / "report.md");
  EXPECT_NE(report.find("## Retrained on held-out data"), std::string::npos) << report;
  EXPECT_NE(report.find("| default |"), std::string::npos) << report;
  EXPECT_NE(output().find("| default |"), std::string::npos) << "the table ends the output\n" << output();

  // Only the retraining, with one seed more: two trainings, nothing twice, with
  // the run's saved proxy (the simulation) without repeating --proxy.
  ASSERT_EQ(lossforge("", "search --resume " + run.string() + " --retrain-only --retrain-seeds 3"), 0) << output();
  std::set<std::pair<std::string, uint64_t>> pairs;
  for (const RetrainRecord& r : read_retrain_records(run.string())) {
    EXPECT_TRUE(pairs.insert({r.formula, r.seed}).second) << r.name << " seed " << r.seed << " twice";
    EXPECT_EQ(r.status, "ok") << r.name << ": " << r.message;
  }
  EXPECT_EQ(pairs.size(), 6u);
  EXPECT_NE(text_of(run / "report.md").find("seeds 1..3"), std::string::npos);
  EXPECT_NE(text_of(run / "report.md").find("Proxy: simulation proxy"), std::string::npos) << "the report keeps its proxy";

  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --retrain-only --slot reg --proxy sim --out " + (dir_ / "x").string())), 2)
      << output();
}

TEST_F(SearchRetrainCli, KilledRetrainingResumesWithoutTrainingTwiceOnGeneratedHeldoutData) {
  const fs::path config = dir_ / "search.toml", run = dir_ / "run";
  std::ofstream(config) << "[search]\npopulation = 60\nproxy_per_generation = 2\n"
                           "seed_losses = [\"1 - I / U + (E - U) / E\", \"Neg(Log(Div(I, U)))\"]\n"
                           "[retrain]\ntop = 2\ninclude_seeds = true\nseeds = 2\nheldout_train = 3\nheldout_val = 2\nheldout_size = 48\n"
                           "heldout_max_object_size = 30\n";
  const std::string log = "FAKE_TRAIN_LOG=" + (dir_ / "train.log").string();
  const std::string trainer = " --data " + (dir_ / "data").string() + " --train-command " + trainer_;
  const int status = lossforge(log + " LOSSFORGE_RETRAIN_KILL_AFTER=2",
                               "search --detector atss --slot reg --seed 4 --budget 3 --workers 1 --config " +
                                   config.string() + trainer + " --out " + run.string());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status << "\n" << output();
  EXPECT_EQ(lines(run / "retrain.jsonl").size(), 2u);
  ASSERT_EQ(lossforge(log, "search --resume " + run.string() + trainer), 0) << output();

  EXPECT_TRUE(fs::exists(run / "heldout" / "annotations" / "instances_val.json")) << "generated held-out data";
  std::map<std::string, int> retrained;
  int proxied = 0;
  for (const std::string& line : lines(dir_ / "train.log")) {
    EXPECT_EQ(line.substr(0, 5), "atss|") << "--detector reaches the trainer: " << line;
    if (line.find("|" + (dir_ / "data").string() + "|") != std::string::npos) ++proxied;
    else if (line.find("|" + (run / "heldout").string() + "|") != std::string::npos) EXPECT_EQ(++retrained[line], 1) << line << " twice";
    else ADD_FAILURE() << "unexpected data in " << line;
  }
  EXPECT_EQ(proxied, 3);
  EXPECT_EQ(retrained.size(), 6u) << "default + top 2, 2 seeds each";
  EXPECT_EQ(read_retrain_records(run.string()).size(), 6u);
  const std::string report = text_of(run / "report.md");
  EXPECT_NE(report.find("generated by `lossforge data synth --train 3 --val 2 --seed 7 --size 48"), std::string::npos)
      << report;
  EXPECT_NE(report.find("| 2/0 |"), std::string::npos) << report;
}

TEST_F(SearchRetrainCli, DetectorsAndTheExampleConfig) {
  ASSERT_EQ(lossforge("", "search --detector faster_rcnn --slot cls --screen 30 --seed 2"), 0) << output();
  EXPECT_NE(output().find("of preset multi_cls"), std::string::npos) << output();
  ASSERT_EQ(lossforge("", "search --detector atss --slot cls --screen 30 --seed 2"), 0) << output();
  EXPECT_NE(output().find("of preset binary_cls"), std::string::npos) << output();
  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --detector yolo --slot cls --screen 30")), 2) << output();
  // Every key of the documented example configs is accepted, and their seed losses parse.
  for (const char* config : {"search.toml", "search_demo.toml", "search_30min.toml", "search_30min_reg.toml"})
    ASSERT_EQ(lossforge("", std::string("search --config ") + LOSSFORGE_SOURCE_DIR + "/examples/" + config +
                                " --screen 20"),
              0)
        << config << ": " << output();
}

}  // namespace
}  // namespace lossforge
