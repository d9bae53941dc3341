// `lossforge train` end to end on a tiny synthetic dataset (16 training
// images of 64 px, a 1/8-width ResNet-18): it trains, the loss falls, the
// run directory gets its metrics and detections; an interrupted run resumes
// to exactly the result of an uninterrupted one; a loss that computes NaN
// stops with status 3 naming the term; bad options fail with one line.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "detectors/data/synth.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct CliResult {
  int status = -1;
  std::string out, err;
};

std::string quoted(const std::string& word) {
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("lossforge_train_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    data::SynthOptions synth;
    synth.train = 16;
    synth.val = 8;
    synth.seed = 3;
    synth.image_size = 64;
    synth.min_object_size = 10;
    synth.max_object_size = 40;
    synth.max_objects = 3;
    synth.threads = 1;
    data::write_synthetic_dataset(root_ / "data", synth);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // `lossforge train` with the tiny configuration plus `extra`.
  static CliResult train(const std::string& run, std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--data", (root_ / "data").string(), "--out", (root_ / run).string(),
                                     "--image-size", "64", "--batch-size", "4", "--width", "0.125",
                                     "--fpn-channels", "16", "--tower-convs", "1", "--threads", "1",
                                     "--workers", "1", "--lr", "0.004"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args);
  }

  static CliResult run_cli(const std::vector<std::string>& args) {
    std::string command = quoted(LOSSFORGE_CLI);
    for (const std::string& a : args) command += " " + quoted(a);
    const fs::path out = root_ / "stdout.txt", err = root_ / "stderr.txt";
    command += " >" + quoted(out.string()) + " 2>" + quoted(err.string()) + " </dev/null";
    const int raw = std::system(command.c_str());
    CliResult r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  static json metrics(const std::string& run) { return json::parse(read_text(root_ / run / "metrics.json")); }

  static fs::path root_;
};
fs::path TrainCli::root_;

std::vector<double> epoch_losses(const std::string& log) {
  std::vector<double> losses;
  const std::regex line(R"(epoch \d+/\d+: loss ([0-9.eE+-]+))");
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) losses.push_back(std::stod((*it)[1]));
  return losses;
}

TEST_F(TrainCli, TrainsWritesMetricsAndDetections) {
  const CliResult r = train("smoke", {"--epochs", "4", "--seed", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<double> losses = epoch_losses(r.err);
  ASSERT_EQ(losses.size(), 4u) << r.err;
  EXPECT_LT(losses.back(), losses.front() * 0.8) << r.err;
  const json m = metrics("smoke");
  EXPECT_EQ(m["status"], "ok");
  for (const char* key : {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"})
    EXPECT_TRUE(m[key].is_number()) << key;
  EXPECT_EQ(m["epochs"], 4);
  EXPECT_GT(m["images_per_s"].get<double>(), 0);
  EXPECT_GT(m["seconds"].get<double>(), 0);
  const json detections = json::parse(read_text(root_ / "smoke" / "detections.json"));
  ASSERT_TRUE(detections.is_array());
  for (const json& d : detections) {
    EXPECT_GE(d["category_id"].get<int>(), 1);
    EXPECT_LE(d["category_id"].get<int>(), 5);
    EXPECT_EQ(d["bbox"].size(), 4u);
  }
  EXPECT_TRUE(fs::exists(root_ / "smoke" / "checkpoint.pt"));
}

// ATSS and Faster R-CNN go through the same loop: their loss terms show in
// the progress lines, the loss falls, and the run ends evaluated.
TEST_F(TrainCli, EveryDetectorTrainsThroughTheSameLoop) {
  const std::string cse_a = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/cse_autoloss_a.loss";
  struct Case {
    std::string run;
    std::vector<std::string> options;
    std::string term;  // a loss term of this detector, as the progress names it
  };
  for (const Case& c : {Case{"atss", {"--detector", "atss"}, "centerness"},
                        Case{"rcnn", {"--detector", "faster_rcnn"}, "rpn_cls"},
                        Case{"rcnn_cse_a",
                             {"--detector", "faster_rcnn", "--cls-loss", cse_a + ":cse_autoloss_a_cls", "--reg-loss",
                              cse_a + ":cse_autoloss_a_reg"},
                             "rpn_reg"}}) {
    SCOPED_TRACE(c.run);
    std::vector<std::string> options = c.options;
    options.insert(options.end(), {"--epochs", "3", "--seed", "1"});
    const CliResult r = train(c.run, options);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find(c.term + " "), std::string::npos) << r.err;
    const std::vector<double> losses = epoch_losses(r.err);
    ASSERT_EQ(losses.size(), 3u) << r.err;
    EXPECT_LT(losses.back(), losses.front()) << r.err;
    const json m = metrics(c.run);
    EXPECT_EQ(m["status"], "ok");
    EXPECT_TRUE(m["AP"].is_number());
  }
  // A multi_cls loss that computes NaN stops Faster R-CNN with the term named.
  const CliResult nan = train("rcnn_nan", {"--detector", "faster_rcnn", "--epochs", "1", "--cls-loss",
                                           "Neg(Dot(Y, Log(Neg(Softmax(X)))))"});
  EXPECT_EQ(nan.status, 3) << nan.err;
  EXPECT_NE(nan.err.find("the cls loss is"), std::string::npos) << nan.err;
  // A one-stage cls loss does not fit the two-stage slot.
  const CliResult misfit = train("rcnn_misfit", {"--detector", "faster_rcnn", "--epochs", "1", "--cls-loss",
                                                 std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/fcos_focal.loss"});
  EXPECT_EQ(misfit.status, 1) << misfit.err;
  EXPECT_NE(misfit.err.find("multi_cls"), std::string::npos) << misfit.err;
}

TEST_F(TrainCli, AnInterruptedRunResumesToTheSameResult) {
  const CliResult whole = train("whole", {"--epochs", "2", "--quiet"});
  ASSERT_EQ(whole.status, 0) << whole.err;
  EXPECT_EQ(whole.err, "");  // --quiet
  // The same run stopped after its first epoch (as if killed after the
  // checkpoint), then continued.
  const CliResult first = train("resumed", {"--epochs", "2", "--stop-after", "1"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_FALSE(fs::exists(root_ / "resumed" / "metrics.json"));
  const CliResult second = train("resumed", {"--epochs", "2", "--resume"});
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_NE(second.err.find("resuming"), std::string::npos) << second.err;
  EXPECT_EQ(epoch_losses(second.err).size(), 1u) << second.err;  // only the second epoch ran
  EXPECT_EQ(metrics("resumed")["AP"], metrics("whole")["AP"]);
  EXPECT_EQ(read_text(root_ / "resumed" / "detections.json"), read_text(root_ / "whole" / "detections.json"));
  // A checkpoint from other options is refused, not silently mixed.
  const CliResult other = train("resumed", {"--epochs", "3", "--resume", "--seed", "9"});
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("other options"), std::string::npos) << other.err;
}

TEST_F(TrainCli, NanLossStopsWithStatus3NamingTheTerm) {
  const CliResult r = train("nan", {"--epochs", "2", "--cls-loss", "Log(Neg(Sig(X)))"});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("the cls loss is NaN"), std::string::npos) << r.err;
  const json m = metrics("nan");
  EXPECT_EQ(m["status"], "nonfinite");
  EXPECT_NE(m["message"].get<std::string>().find("cls"), std::string::npos);
}

TEST_F(TrainCli, CseAutolossBTrainsWithoutNan) {
  const std::string file = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/cse_autoloss_b.loss";
  const CliResult r = train("cse_b", {"--epochs", "2", "--quiet", "--cls-loss", file + ":cse_autoloss_b_cls",
                                "--reg-loss", file + ":cse_autoloss_b_reg"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(metrics("cse_b")["status"], "ok");
}

TEST_F(TrainCli, BadOptionsFailWithOneLine) {
  CliResult r = train("bad", {"--epochs", "1", "--reg-loss", std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/focal.loss"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("does not fit the reg slot"), std::string::npos) << r.err;
  EXPECT_EQ(metrics("bad")["status"], "failed");

  r = train("cuda", {"--epochs", "1", "--device", "cuda"});
  if (r.status == 0) GTEST_SKIP() << "this machine has a CUDA device";
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no CUDA device"), std::string::npos) << r.err;

  r = run_cli({"train", "--data", (root_ / "missing").string(), "--out", (root_ / "missing_run").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;

  r = run_cli({"train", "--out", (root_ / "x").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--data"), std::string::npos) << r.err;

  r = run_cli({"train", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--cls-loss"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lossforge
