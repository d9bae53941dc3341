// `lossforge search` with the real subprocess worker against a fake trainer
// script (the trainer's contract: arguments in, RUN/metrics.json and an exit
// status out): results of every kind are recorded, a run killed with SIGKILL
// in the middle resumes to exactly the run that was never killed, and no
// candidate is trained twice.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "search/proxy.hpp"
#include "fake_trainer_cli.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using search_test::lines;

// Writes RUN/metrics.json with an AP derived from the formula's text, and logs
// every training it completed. Formulas with Sqrt are "non-finite"; Exp
// makes it fail; Tanh writes a broken metrics.json.
constexpr const char* kFakeTrainer = R"SH(#!/bin/sh
out=""; formula=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --cls-loss|--reg-loss) [ -z "$formula" ] && formula="$2"; shift ;;
    *) ;;
  esac
  shift
done
mkdir -p "$out"
done_with() { echo "$formula" >> "$FAKE_TRAIN_LOG"; exit "$1"; }
case "$formula" in
  *Sqrt*) echo '{"status":"nonfinite","message":"loss became NaN at step 3"}' > "$out/metrics.json"; done_with 3 ;;
  *Exp*) echo "CUDA out of memory (pretend)" >&2; done_with 1 ;;
  *Tanh*) echo '{"status":' > "$out/metrics.json"; done_with 0 ;;
esac
ap=$(printf '%s' "$formula" | cksum | awk '{ printf "0.%03d", $1 % 1000 }')
echo "{\"status\":\"ok\",\"message\":\"\",\"AP\":$ap,\"AP50\":$ap,\"seconds\":0.01}" > "$out/metrics.json"
done_with 0
)SH";

class SearchCliTest : public search_test::FakeTrainerCli {
 protected:
  SearchCliTest()
      : FakeTrainerCli(fs::temp_directory_path() / ("lossforge-search-cli-test-" + std::to_string(::getpid())),
                       kFakeTrainer) {}
};

std::vector<Json> records(const fs::path& run) {
  std::ifstream in(run / "candidates.jsonl");
  std::vector<Json> out;
  for (std::string line; std::getline(in, line);) {
    Json r = Json::parse(line);
    r.erase("timing");
    if (r.contains("proxy")) {
      r["proxy"].erase("seconds");
      r["proxy"].erase("from_proxy_jsonl");
    }
    out.push_back(r);
  }
  return out;
}

TEST_F(SearchCliTest, TrainerResultsOfEveryKindAreRecordedNeverThrown) {
  TrainerProxyOptions options;
  options.command = {trainer_};
  options.data = (dir_ / "data").string();
  options.runs_dir = (dir_ / "runs").string();
  ::setenv("FAKE_TRAIN_LOG", (dir_ / "direct.log").c_str(), 1);
  auto proxy = make_trainer_proxy(options);
  const std::vector<ProxyRequest> requests = {{1, "reg", "Neg(Div(I,U))", 1, ""},
                                              {2, "reg", "Sqrt(U)", 1, ""},
                                              {3, "reg", "Exp(I)", 1, ""},
                                              {4, "reg", "Tanh(I)", 1, ""}};
  std::vector<size_t> seen;
  const std::vector<ProxyResult> r =
      evaluate_parallel(*proxy, requests, 3, [&](size_t i, const ProxyResult&) { seen.push_back(i); });
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(r[0].status, "ok") << r[0].message;
  EXPECT_GT(r[0].fitness, 0);
  EXPECT_EQ(r[0].fitness, r[0].metrics.at("AP"));
  EXPECT_EQ(r[1].status, "nonfinite");
  EXPECT_NE(r[1].message.find("NaN"), std::string::npos) << r[1].message;
  EXPECT_EQ(r[2].status, "failed");
  EXPECT_NE(r[2].message.find("out of memory"), std::string::npos) << "the log's last line: " << r[2].message;
  EXPECT_EQ(r[3].status, "failed");
  EXPECT_NE(r[3].message.find("metrics.json"), std::string::npos) << r[3].message;

  TrainerProxyOptions missing = options;
  missing.command = {(dir_ / "no-such-trainer").string()};
  EXPECT_EQ(make_trainer_proxy(missing)->evaluate(requests[0]).status, "failed");
}

TEST_F(SearchCliTest, KilledRunResumesToTheSameRunWithoutTrainingAnythingTwice) {
  const fs::path config = dir_ / "search.toml";
  std::ofstream(config) << "[search]\npopulation = 80\nproxy_per_generation = 2\n"
                           "seed_losses = [\"1 - I / U + (E - U) / E\", \"Neg(Log(Div(I, U)))\"]\n";
  // One worker: the kill lands right after a result is recorded, with no other
  // training in flight (one in flight would be killed with the search and redone).
  // No retraining here (tests/search/retrain_test.cpp covers it).
  const std::string common = "search --slot reg --seed 9 --budget 6 --workers 1 --retrain-seeds 0 --config " + config.string() +
                             " --data " + (dir_ / "data").string() + " --train-command " + trainer_;
  const std::string whole_log = "FAKE_TRAIN_LOG=" + (dir_ / "whole.log").string();
  ASSERT_EQ(lossforge(whole_log, common + " --out " + (dir_ / "whole").string()), 0) << output();

  const std::string killed_log = "FAKE_TRAIN_LOG=" + (dir_ / "killed.log").string();
  const int status = lossforge(killed_log + " LOSSFORGE_SEARCH_KILL_AFTER_PROXY=3", common + " --out " + (dir_ / "killed").string());
  // The shell reports a child killed by SIGKILL as exit status 128 + 9.
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL) << status << "\n" << output();
  EXPECT_EQ(lines(dir_ / "killed" / "proxy.jsonl").size(), 3u);
  ASSERT_EQ(lossforge(killed_log, "search --resume " + (dir_ / "killed").string() + " --data " + (dir_ / "data").string() +
                                      " --train-command " + trainer_),
            0)
      << output();
  EXPECT_NE(output().find("resuming"), std::string::npos) << output();

  const std::vector<Json> resumed = records(dir_ / "killed"), whole = records(dir_ / "whole");
  ASSERT_EQ(resumed.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(resumed[i], whole[i]) << "record " << i;
  const std::vector<std::string> trained = lines(dir_ / "killed.log");
  EXPECT_EQ(trained.size(), 6u);
  std::map<std::string, int> times;
  for (const std::string& f : trained) EXPECT_EQ(++times[f], 1) << f << " trained twice";
  EXPECT_EQ(lines(dir_ / "killed" / "proxy.jsonl").size(), 6u);
  EXPECT_TRUE(fs::exists(dir_ / "killed" / "report.md"));
  EXPECT_FALSE(fs::exists(dir_ / "killed" / "retrain.jsonl")) << "--retrain-seeds 0 retrains nothing";
  EXPECT_NE(output().find("retrain: disabled"), std::string::npos) << output();
}

TEST_F(SearchCliTest, BadCommandLinesAndConfigsSayWhy) {
  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --slot box --out " + (dir_ / "x").string())), 2) << output();
  EXPECT_NE(output().find("--slot"), std::string::npos) << output();
  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --slot cls --out " + (dir_ / "x").string())), 2) << output();
  EXPECT_NE(output().find("--data"), std::string::npos) << output();
  const fs::path config = dir_ / "bad.toml";
  std::ofstream(config) << "[search]\npopulaton = 3\n";
  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --slot cls --proxy sim --config " + config.string() + " --out " +
                                          (dir_ / "y").string())),
            1)
      << output();
  EXPECT_NE(output().find("populaton"), std::string::npos) << output();
  EXPECT_EQ(WEXITSTATUS(lossforge("", "search --resume " + (dir_ / "nothing").string())), 1) << output();
  EXPECT_NE(output().find("no run"), std::string::npos) << output();
}

}  // namespace
}  // namespace lossforge

namespace lossforge {
namespace {

TEST_F(SearchCliTest, CheckReportsConvergencePropertiesOfPresetLosses) {
  ASSERT_EQ(lossforge("", "check 'Div(I,U)' --pset reg"), 0) << output();
  EXPECT_NE(output().find("convergence [reg]: FAILS falls as IoU rises: G="), std::string::npos) << output();
  ASSERT_EQ(lossforge("", std::string("check ") + LOSSFORGE_SOURCE_DIR + "/examples/losses/giou.loss"), 0) << output();
  EXPECT_NE(output().find("convergence [reg]: finite ok, falls as IoU rises ok, minimal at perfect match ok"),
            std::string::npos)
      << output();
  // A loss with no preset's signature gets no convergence report.
  ASSERT_EQ(lossforge("", std::string("check ") + LOSSFORGE_SOURCE_DIR + "/examples/losses/focal.loss"), 0) << output();
  EXPECT_EQ(output().find("convergence"), std::string::npos) << output();
}

TEST_F(SearchCliTest, ScreenModeReportsEveryStage) {
  ASSERT_EQ(lossforge("", "search --slot reg --screen 300 --seed 2"), 0) << output();
  for (const char* stage : {"dedup", "convergence properties", "optimization simulation", "candidates/s"})
    EXPECT_NE(output().find(stage), std::string::npos) << stage << "\n" << output();
}

}  // namespace
}  // namespace lossforge
