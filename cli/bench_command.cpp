// `lossforge bench`: how fast a loss (with its gradients) runs on each back end
// of this build, side by side on one batch of random inputs: compile time,
// cache-hit time, time per call, ns per row, effective bandwidth and the
// speed-up over the interpreter.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/backend.hpp"
#include "cli/command.hpp"
#include "cli/loss_source.hpp"
#include "cli/table.hpp"
#include "runtime/benchmark_inputs.hpp"

namespace lossforge::cli {
namespace {

struct BenchArgs {
  LossArgs loss;
  size_t rows = 100000;
  size_t width = 81;
  std::vector<std::string> backends;  // empty: every one this build and machine have
  std::vector<int> threads;           // empty: 1 and one per core
  std::string dtype = "f32";
  bool forward_only = false;
  double min_time = 0.5;
  uint64_t seed = 1;
  bool json = false;
};

constexpr const char* kFooter = R"(Inputs are random and the same for every back end: pred values uniform in [-4, 4],
the other real inputs in [0, 1], the other real[C] inputs one-hot rows, boxes of 1 to 50 units
with the later box inputs near the first. Every real[C] input is --width wide unless its type fixes
the width. Times are medians of repeated calls after a warm-up; the CUDA time is the device
time of one launch on arrays already on the GPU. "compile" is text to callable the first time
in this process (a disk cache hit when an earlier run compiled the loss), "cache hit" the same
call again. GB/s counts each input read once, each gradient and the per-row loss written once.
Without --backend every back end of this build runs, cuda only where there is a device.
)";

// Three significant digits, whole numbers from 1000 on (no exponents).
std::string format_number(double value) {
  char text[32];
  if (value >= 1000) std::snprintf(text, sizeof text, "%.0f", value);
  else std::snprintf(text, sizeof text, "%.3g", value);
  return text;
}

struct Measurement {
  Backend backend;
  int threads;  // 0: not a thread count (interp, cuda)
  BackendTiming timing;
};

struct Batch {
  size_t rows = 0;
  size_t max_width = 1;  // widest real[C] input, 1 without one
  double bytes = 0;      // moved per call: inputs once, gradients and per-row losses once
};

template <class T>
int bench(const BenchArgs& args, const Loss& loss, CudaDType dtype) {
  const std::vector<Array<T>> inputs = benchmark_inputs<T>(loss, args.rows, args.width, args.seed);
  EvalOptions options;
  options.gradients = !args.forward_only;
  Batch batch;
  batch.rows = args.rows;
  const double element = cuda_dtype_bytes(dtype);
  for (size_t i = 0; i < inputs.size(); ++i) {
    batch.bytes += double(inputs[i].data.size()) * element;
    if (options.gradients && loss.inputs[i].pred) batch.bytes += double(inputs[i].data.size()) * element;
    if (loss.inputs[i].type.is_vec()) batch.max_width = std::max(batch.max_width, inputs[i].width);
  }
  batch.bytes += double(args.rows) * sizeof(T);

  // Which back ends: those asked for (failing when one is missing), or all there are.
  std::vector<Backend> backends;
  std::vector<std::pair<Backend, std::string>> skipped;
  if (!args.backends.empty()) {
    for (const std::string& name : args.backends) {
      const Backend backend = *find_backend(name);
      if (std::optional<std::string> reason = unavailable_reason(backend)) throw UnavailableError(*reason);
      backends.push_back(backend);
    }
  } else {
    for (std::string_view name : kBackendNames) {
      const Backend backend = *find_backend(name);
      if (cuda_dtype_bytes(dtype) == 2 && backend != Backend::Cuda) continue;  // 16-bit kernels are CUDA's
      if (std::optional<std::string> reason = unavailable_reason(backend)) skipped.emplace_back(backend, *reason);
      else backends.push_back(backend);
    }
    if (backends.empty())
      throw UnavailableError("--dtype " + args.dtype + " runs on the cuda backend only, and " + skipped.front().second);
  }
  std::vector<int> threads = args.threads;
  if (threads.empty()) threads = {1, int(std::max(1u, std::thread::hardware_concurrency()))};
  std::sort(threads.begin(), threads.end());
  threads.erase(std::unique(threads.begin(), threads.end()), threads.end());

  std::vector<Measurement> results;
  for (Backend backend : backends) {
    if (backend == Backend::Llvm) {
      for (int t : threads)
        results.push_back({backend, t, time_backend<T>(backend, loss, inputs, options, dtype, t, args.min_time)});
    } else {
      results.push_back({backend, 0, time_backend<T>(backend, loss, inputs, options, dtype, 1, args.min_time)});
    }
  }
  std::optional<double> interp_seconds;
  for (const Measurement& m : results)
    if (m.backend == Backend::Interp) interp_seconds = m.timing.seconds_per_call;
  const auto ns_per_row = [&](const Measurement& m) { return m.timing.seconds_per_call * 1e9 / double(batch.rows); };
  const auto gb_per_s = [&](const Measurement& m) { return batch.bytes / m.timing.seconds_per_call / 1e9; };
  const auto vs_interp = [&](const Measurement& m) { return *interp_seconds / m.timing.seconds_per_call; };

  const std::string shape = std::to_string(batch.rows) + " rows" +
                            (batch.max_width > 1 ? " x C=" + std::to_string(batch.max_width) : std::string());
  if (args.json) {
    nlohmann::json out;
    out["loss"] = loss.name;
    out["rows"] = batch.rows;
    out["width"] = batch.max_width;
    out["dtype"] = args.dtype;
    out["gradients"] = options.gradients;
    out["results"] = nlohmann::json::array();
    for (const Measurement& m : results) {
      const bool compiled = m.backend != Backend::Interp;
      nlohmann::json r;
      r["backend"] = backend_name(m.backend);
      r["threads"] = m.threads ? nlohmann::json(m.threads) : nlohmann::json();
      r["compile_ms"] = compiled ? nlohmann::json(m.timing.compile_seconds * 1e3) : nlohmann::json();
      r["cache_hit_ms"] = compiled ? nlohmann::json(m.timing.cached_seconds * 1e3) : nlohmann::json();
      r["ms_per_call"] = m.timing.seconds_per_call * 1e3;
      r["ns_per_row"] = ns_per_row(m);
      r["gb_per_s"] = gb_per_s(m);
      r["vs_interp"] = interp_seconds ? nlohmann::json(vs_interp(m)) : nlohmann::json();
      out["results"].push_back(r);
    }
    out["skipped"] = nlohmann::json::array();
    for (const auto& [backend, reason] : skipped)
      out["skipped"].push_back({{"backend", backend_name(backend)}, {"reason", reason}});
    std::cout << out.dump(2) << "\n";
    return exit_code::kOk;
  }
  std::cout << loss.name << ": " << (options.gradients ? "loss + gradients" : "loss") << ", " << shape << ", "
            << args.dtype << "\n";
  std::vector<TableRow> rows;
  for (const Measurement& m : results) {
    const bool compiled = m.backend != Backend::Interp;
    rows.push_back({std::string(backend_name(m.backend)), m.threads ? std::to_string(m.threads) : "-",
                    compiled ? format_number(m.timing.compile_seconds * 1e3) : "-",
                    compiled ? format_number(m.timing.cached_seconds * 1e3) : "-",
                    format_number(m.timing.seconds_per_call * 1e3), format_number(ns_per_row(m)),
                    format_number(gb_per_s(m)), interp_seconds ? format_number(vs_interp(m)) + "x" : "-"});
  }
  const TableRow header = {"backend", "threads", "compile ms", "cache hit ms",
                           "ms/call", "ns/row",  "GB/s",       "vs interp"};
  std::cout << render_table(header, rows);
  for (const auto& [backend, reason] : skipped) std::cout << backend_name(backend) << ": skipped (" << reason << ")\n";
  return exit_code::kOk;
}

int run_bench(const BenchArgs& args) {
  for (const std::string& name : args.backends) require_backend(*find_backend(name));
  const LossSet losses = load_losses(args.loss);
  const Loss& loss = select_loss(losses, args.loss.loss_name);
  const CudaDType dtype = *find_cuda_dtype(args.dtype);
  if (cuda_dtype_bytes(dtype) == 2)
    for (const std::string& name : args.backends)
      if (name != "cuda") throw UsageError("--dtype " + args.dtype + " is timed on the cuda backend only, not " + name);
  return dtype == CudaDType::F64 ? bench<double>(args, loss, dtype) : bench<float>(args, loss, dtype);
}

}  // namespace

Command add_bench_command(CLI::App& parent) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* app = parent.add_subcommand("bench", "Time a loss and its gradients on every back end, side by side");
  add_loss_options(*app, args->loss, "Which loss of the file (needed when it defines several)");
  app->add_option("--rows", args->rows, "Rows of the batch (elements, box pairs or real[C] rows)")
      ->check(CLI::Range(size_t(1), size_t(1) << 30))
      ->capture_default_str();
  app->add_option("--width", args->width, "Values per row of every real[C] input")
      ->check(CLI::Range(size_t(1), size_t(1) << 20))
      ->capture_default_str();
  app->add_option("--backend", args->backends, "Back ends to time (repeatable; default: all there are)")
      ->check(CLI::IsMember(std::vector<std::string>(kBackendNames.begin(), kBackendNames.end())))
      ->allow_extra_args(false);
  app->add_option("--threads", args->threads, "Threads of the LLVM engine (repeatable; default: 1 and one per core)")
      ->check(CLI::Range(1, 1024))
      ->allow_extra_args(false);
  app->add_option("--dtype", args->dtype, "Array type; f16 and bf16 are the CUDA kernels' 16-bit storage")
      ->check(CLI::IsMember({"f32", "f64", "f16", "bf16"}))
      ->capture_default_str();
  app->add_flag("--forward-only", args->forward_only, "Time the loss alone, without its gradients");
  app->add_option("--min-time", args->min_time, "Seconds of repeated calls per back end, at least")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the random inputs")->capture_default_str();
  app->add_flag("--json", args->json, "Print JSON instead of a table");
  app->footer(kFooter);
  return {app, [args] { return run_bench(*args); }};
}

}  // namespace lossforge::cli
