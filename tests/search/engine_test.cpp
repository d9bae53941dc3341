// The search engine with the simulation proxy (the in-process test double):
// what a run writes, that the same seed and worker count give the same run, and
// that resuming from a checkpoint continues it exactly.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "compiler/frontend.hpp"
#include "search/engine.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lossforge-engine-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir.string();
}

std::vector<Json> read_jsonl(const std::string& file) {
  std::ifstream in(file);
  std::vector<Json> out;
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

// The records without what legitimately differs between runs (timings).
std::vector<Json> without_timings(std::vector<Json> records) {
  for (Json& r : records) {
    r.erase("timing");
    if (r.contains("proxy")) {
      r["proxy"].erase("seconds");
      r["proxy"]["metrics"].erase("seconds");
      r["proxy"].erase("from_proxy_jsonl");
    }
  }
  return records;
}

SearchConfig small_config(const std::string& slot) {
  SearchConfig c;
  c.slot = slot;
  c.seed = 5;
  c.population = 120;
  c.budget = 6;
  c.proxy_per_generation = 2;
  c.workers = 2;
  // Known losses in generation 0 give evolution parents at once (fewer generations, a faster test).
  c.seed_losses = {search_preset(c).name == "reg" ? "1 - I / U + (E - U) / E"
                                                  : "PY * (1 - sigmoid(X))^2 * softplus(-X) + NY * sigmoid(X)^2 * softplus(X)",
                   search_preset(c).name == "reg" ? "Neg(Log(Div(I, U)))" : "Neg(Add(Mul(PY, Log(Sig(X))), Mul(NY, Log(Sub(1, Sig(X))))))"};
  return c;
}

TEST(SearchEngine, ARunRecordsEveryCandidateAndItsVerdicts) {
  const std::string dir = temp_dir("run");
  SearchConfig config = small_config("reg");
  const Preset& preset = search_preset(config);
  Search search(config, make_simulation_proxy(preset), dir, nullptr);
  search.run();
  const std::vector<Json> records = read_jsonl(dir + "/candidates.jsonl");
  ASSERT_FALSE(records.empty());
  std::set<uint64_t> ids;
  int proxied = 0;
  std::set<std::string> stages;
  for (const Json& r : records) {
    EXPECT_TRUE(ids.insert(r.at("id").get<uint64_t>()).second) << "ids are unique";
    for (const char* key : {"deap", "infix", "canonical_hash", "stage", "verdict", "origin"}) EXPECT_TRUE(r.contains(key)) << key << " in " << r;
    stages.insert(r.at("stage").get<std::string>());
    if (r.at("stage") == "proxy") ++proxied;
    if (r.at("verdict") == "rejected") {
      EXPECT_FALSE(r.at("reason").get<std::string>().empty());
    }
    // The text is DSL that reads back.
    EXPECT_NO_THROW(load_formula(SourceFile::from_text("<t>", r.at("deap").get<std::string>()), preset)) << r;
  }
  EXPECT_EQ(records.front().at("origin"), "seed");
  EXPECT_EQ(proxied, config.budget);
  for (const char* stage : {"dedup", "convergence", "proxy"}) EXPECT_TRUE(stages.count(stage)) << stage;
  EXPECT_EQ(read_jsonl(dir + "/proxy.jsonl").size(), size_t(config.budget));
  EXPECT_TRUE(fs::exists(dir + "/checkpoint.json"));
  EXPECT_TRUE(fs::exists(dir + "/report.md"));
  // The best loss is a .loss file that loads, with the reg signature.
  const Module best = load_module(SourceFile::read(dir + "/best/best_1.loss"));
  ASSERT_EQ(best.losses.size(), 1u);
  EXPECT_EQ(best.losses[0].inputs.size(), 2u);
  EXPECT_FALSE(search.generations().empty());
  EXPECT_THROW(Search(config, make_simulation_proxy(preset), dir, nullptr), InputError) << "a run folder is never overwritten";
}

TEST(SearchEngine, SameSeedAndWorkersGiveTheSameRun) {
  const SearchConfig config = small_config("cls");
  const Preset& preset = search_preset(config);
  const std::string a = temp_dir("same-a"), b = temp_dir("same-b");
  Search(config, make_simulation_proxy(preset), a, nullptr).run();
  Search(config, make_simulation_proxy(preset), b, nullptr).run();
  const auto ra = without_timings(read_jsonl(a + "/candidates.jsonl"));
  const auto rb = without_timings(read_jsonl(b + "/candidates.jsonl"));
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) ASSERT_EQ(ra[i], rb[i]) << "record " << i;
  // A different seed is a different run.
  SearchConfig other = config;
  other.seed = 6;
  const std::string c = temp_dir("same-c");
  Search(other, make_simulation_proxy(preset), c, nullptr).run();
  EXPECT_NE(without_timings(read_jsonl(c + "/candidates.jsonl")), ra);
}

TEST(SearchEngine, ResumeFromAMidRunCheckpointContinuesExactly) {
  SearchConfig config = small_config("cls");
  const Preset& preset = search_preset(config);
  const std::string whole = temp_dir("whole"), parts = temp_dir("parts");
  Search(config, make_simulation_proxy(preset), whole, nullptr).run();
  // Stop after part of the budget, then resume with the full budget in the saved config.
  SearchConfig first = config;
  first.budget = 2;
  Search(first, make_simulation_proxy(preset), parts, nullptr).run();
  {
    // The budget lives in config.json: raise it as a user editing the run would.
    std::ifstream in(parts + "/config.json");
    Json saved = Json::parse(in);
    saved["budget"] = config.budget;
    std::ofstream(parts + "/config.json") << saved.dump(1);
  }
  Search::resume(parts, make_simulation_proxy(preset), nullptr).run();
  EXPECT_EQ(without_timings(read_jsonl(parts + "/candidates.jsonl")), without_timings(read_jsonl(whole + "/candidates.jsonl")));
}

}  // namespace
}  // namespace lossforge
