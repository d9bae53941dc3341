#include "search/proxy.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "search/simulation.hpp"

extern char** environ;

namespace lossforge {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class SimulationProxy : public ProxyEvaluator {
 public:
  explicit SimulationProxy(const Preset& preset) : preset_(preset) {}

  ProxyResult evaluate(const ProxyRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    ProxyResult result;
    try {
      const std::string formula = request.formula.empty() ? reference_formula(preset_) : request.formula;
      const Loss loss = load_formula(SourceFile::from_text("<candidate>", formula), preset_);
      SimulationOptions options;
      options.steps = 400;          // longer than the screening stage
      options.seed = request.seed;  // a different draw of the simulated data
      const SimulationResult sim = simulate_optimization(loss, preset_, options);
      if (!std::isfinite(sim.metric)) {
        result.status = "nonfinite";
        result.message = sim.detail;
      } else {
        result.status = "ok";
        result.fitness = sim.metric;
        result.metrics["AP"] = sim.metric;
      }
    } catch (const std::exception& e) {
      result.status = "failed";
      result.message = e.what();
    }
    result.seconds = seconds_since(start);
    result.metrics["seconds"] = result.seconds;
    return result;
  }

  std::string describe() const override { return "simulation proxy (model optimization simulation, 400 steps)"; }

 private:
  const Preset& preset_;
};

std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text;
}

std::string tail_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

class TrainerProxy : public ProxyEvaluator {
 public:
  explicit TrainerProxy(TrainerProxyOptions options) : o_(std::move(options)) {
    if (o_.command.empty()) throw Error("proxy trainer: no command given");
  }

  ProxyResult evaluate(const ProxyRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    ProxyResult result;
    namespace fs = std::filesystem;
    const std::string out =
        o_.runs_dir + "/" + (request.run_name.empty() ? "cand-" + std::to_string(request.candidate) : request.run_name);
    std::error_code ec;
    fs::remove_all(out, ec);  // a run killed half way is started again from nothing
    fs::create_directories(out, ec);
    const bool cls = request.slot == "cls";
    std::vector<std::string> args = o_.command;
    auto add = [&](std::initializer_list<std::string> words) { args.insert(args.end(), words); };
    add({"--detector", o_.detector, "--data", o_.data});
    if (!request.formula.empty()) add({cls ? "--cls-loss" : "--reg-loss", request.formula});
    if (!o_.other_slot_loss.empty()) add({cls ? "--reg-loss" : "--cls-loss", o_.other_slot_loss});
    add({"--epochs", std::to_string(o_.epochs), "--device", o_.device, "--out", out, "--seed",
         std::to_string(request.seed), "--threads", std::to_string(o_.threads), "--quiet"});
    args.insert(args.end(), o_.extra_args.begin(), o_.extra_args.end());

    const std::string log = out + "/train.log";
    int status = 0;
    std::string failure = run_child(args, log, o_.timeout_seconds, status);
    const std::string metrics_path = out + "/metrics.json";
    nlohmann::json metrics;
    if (failure.empty()) {
      std::ifstream in(metrics_path);
      if (in) {
        try {
          in >> metrics;
        } catch (const std::exception& e) {
          failure = "unreadable metrics.json of " + fs::path(out).filename().string() + ": " + one_line(e.what());
        }
      }
    }
    if (!failure.empty() || !metrics.is_object()) metrics = nlohmann::json::object();
    for (auto& [key, value] : metrics.items())
      if (value.is_number()) result.metrics[key] = value.get<double>();
    auto text = [&](const char* key) {
      const auto it = metrics.find(key);
      return it != metrics.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string reported = text("status");
    if (!failure.empty()) {
      result.status = "failed";
      result.message = failure;
    } else if (status == 3 || reported == "nonfinite") {
      result.status = "nonfinite";
      result.message = text("message").empty() ? "non-finite loss" : one_line(text("message"));
    } else if (status != 0 || reported != "ok" || !result.metrics.count("AP")) {
      result.status = "failed";
      std::string why = text("message");
      if (why.empty()) why = tail_of(log);
      result.message = "trainer exit " + std::to_string(status) + (reported.empty() ? ", no usable metrics.json" : "") +
                       (why.empty() ? "" : ": " + one_line(why));
    } else {
      result.status = "ok";
      result.fitness = result.metrics.at("AP");
    }
    result.seconds = seconds_since(start);
    return result;
  }

  std::string describe() const override {
    std::string text = "trainer:";
    for (const std::string& w : o_.command) text += " " + w;
    text += " --detector " + o_.detector + " --data " + o_.data + " --epochs " + std::to_string(o_.epochs);
    for (const std::string& w : o_.extra_args) text += " " + w;
    return text;
  }

 private:
  TrainerProxyOptions o_;
};

}  // namespace

void append_durable(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw Error("cannot open " + path + " for appending");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw Error("cannot write " + path);
    }
    done += size_t(n);
  }
  ::fsync(fd);
  ::close(fd);
}

std::string run_child(const std::vector<std::string>& args, const std::string& log, double timeout_seconds, int& status) {
  if (args.empty()) return "no command given";
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return std::string("cannot fork: ") + std::strerror(errno);
  if (pid == 0) {
    // The child: dies with the search (even a kill -9 of it), so no orphaned
    // training finishes unrecorded; output to the log; no input.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) ::_exit(127);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::dup2(in, 0);
    ::execvp(argv[0], argv.data());
    const char message[] = "lossforge search: cannot start the child process\n";
    [[maybe_unused]] ssize_t n = ::write(2, message, sizeof message - 1);
    ::_exit(127);
  }
  const auto start = std::chrono::steady_clock::now();
  int wait_status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &wait_status, WNOHANG);
    if (done == pid) break;
    if (done < 0) return std::string("waitpid: ") + std::strerror(errno);
    if (seconds_since(start) > timeout_seconds) {
      kill(pid, SIGKILL);
      waitpid(pid, &wait_status, 0);
      return "timed out after " + std::to_string(int(timeout_seconds)) + " s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFSIGNALED(wait_status)) return args[0] + " killed by signal " + std::to_string(WTERMSIG(wait_status));
  status = WEXITSTATUS(wait_status);
  if (status == 127) return "cannot start " + args[0] + (tail_of(log).empty() ? "" : ": " + one_line(tail_of(log)));
  return "";
}

std::unique_ptr<ProxyEvaluator> make_simulation_proxy(const Preset& preset) { return std::make_unique<SimulationProxy>(preset); }

std::unique_ptr<ProxyEvaluator> make_trainer_proxy(const TrainerProxyOptions& options) {
  return std::make_unique<TrainerProxy>(options);
}

std::vector<ProxyResult> evaluate_parallel(ProxyEvaluator& evaluator, const std::vector<ProxyRequest>& requests,
                                           int workers, const std::function<void(size_t, const ProxyResult&)>& on_result) {
  std::vector<ProxyResult> results(requests.size());
  std::atomic<size_t> next{0};
  std::mutex mutex;
  auto work = [&] {
    for (size_t i; (i = next++) < requests.size();) {
      ProxyResult r;
      try {
        r = evaluator.evaluate(requests[i]);
      } catch (const std::exception& e) {  // an evaluator's own failure is a failed result too
        r.status = "failed";
        r.message = one_line(e.what());
      }
      std::lock_guard lock(mutex);
      results[i] = r;
      if (on_result) on_result(i, results[i]);
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < std::max(1, workers) && size_t(w) < requests.size(); ++w) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace lossforge
