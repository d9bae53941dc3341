#include "detectors/train/trainer.hpp"

#include <torch/cuda.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "compiler/error.hpp"
#include "detectors/data/coco_eval.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/detector.hpp"
#include "detectors/train/safetensors.hpp"
#include "runtime/files.hpp"

namespace lossforge::detectors {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string clock_text(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

// The first `limit` images (by id) of a COCO file, written to `path`; the
// original file when no limit applies.
fs::path subset(const fs::path& annotations, size_t limit, const fs::path& path) {
  if (limit == 0) return annotations;
  data::CocoDataset full = data::load_coco(annotations);
  if (full.images.size() <= limit) return annotations;
  std::sort(full.images.begin(), full.images.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  full.images.resize(limit);
  const int64_t last = full.images.back().id;
  std::erase_if(full.annotations, [&](const data::CocoAnnotation& a) { return a.image_id > last; });
  full.reindex();
  data::save_coco(full, path);
  return path;
}

at::Tensor pixels_tensor(const data::Batch& batch, const at::Device& device) {
  at::Tensor cpu = at::from_blob(const_cast<float*>(batch.pixels.data()), {batch.size, 3, batch.height, batch.width},
                                 at::kFloat);
  return cpu.to(device, /*non_blocking=*/false, /*copy=*/true);
}

// Progress: a bar redrawn in place on a terminal, one line per epoch otherwise.
class Progress {
 public:
  Progress(bool quiet, int epochs, size_t iterations)
      : quiet_(quiet), tty_(isatty(STDERR_FILENO)), epochs_(epochs), iterations_(iterations) {}

  void start_epoch(int epoch) {
    epoch_ = epoch;
    epoch_start_ = Clock::now();
    sums_.assign(sums_.size(), 0.0);
    count_ = 0;
  }

  // The values of the loss terms of one iteration.
  void step(size_t done, const std::vector<LossTerm>& terms, const std::vector<double>& values,
            size_t iterations_left_after_epoch) {
    if (names_.empty())
      for (const LossTerm& t : terms) names_.push_back(t.name);
    sums_.resize(values.size(), 0.0);
    for (size_t t = 0; t < values.size(); ++t) sums_[t] += values[t];
    ++count_;
    if (quiet_ || !tty_) return;
    const double elapsed = seconds_since(epoch_start_);
    if (done != iterations_ && seconds_since(last_draw_) < 0.1) return;
    last_draw_ = Clock::now();
    const double rate = done / std::max(elapsed, 1e-9);
    const double eta = (iterations_ - done + iterations_left_after_epoch) / std::max(rate, 1e-9);
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / std::max<size_t>(iterations_, 1));
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %zu/%zu %.1f it/s %s  ETA %s", epoch_ + 1, epochs_, bar.c_str(),
                 done, iterations_, rate, term_means(" ").c_str(), clock_text(eta).c_str());
    std::fflush(stderr);
  }

  void end_epoch() {
    if (quiet_) return;
    const double elapsed = seconds_since(epoch_start_);
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "epoch %d/%d: loss %.4f (%s), %.2f it/s, %s\n", epoch_ + 1, epochs_, epoch_mean_total(),
                 term_means(", ").c_str(), count_ / std::max(elapsed, 1e-9), clock_text(elapsed).c_str());
    std::fflush(stderr);
  }

  void line(const std::string& text) {
    if (quiet_) return;
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", text.c_str());
  }

  double epoch_mean_total() const {
    double total = 0;
    for (double sum : sums_) total += sum;
    return total / std::max<size_t>(count_, 1);
  }

 private:
  // "cls 0.1234, reg 0.5678": each term's mean over the epoch so far.
  std::string term_means(const char* separator) const {
    std::string text;
    char number[32];
    for (size_t t = 0; t < names_.size() && t < sums_.size(); ++t) {
      std::snprintf(number, sizeof number, " %.4f", sums_[t] / std::max<size_t>(count_, 1));
      text += (t ? separator : "") + names_[t] + number;
    }
    return text;
  }

  bool quiet_, tty_;
  int epochs_;
  size_t iterations_;
  int epoch_ = 0;
  Clock::time_point epoch_start_, last_draw_;
  std::vector<std::string> names_;
  std::vector<double> sums_;
  size_t count_ = 0;
};

// What must agree between a checkpoint and the run that resumes it.
json run_identity(const TrainOptions& o) {
  return {{"detector", o.detector},        {"depth", o.model.depth},         {"width", o.model.width},
          {"fpn_channels", o.model.fpn_channels}, {"tower_convs", o.model.tower_convs},
          {"atss_anchor_scale", o.model.atss_anchor_scale},
          {"image_size", o.image_size},    {"batch_size", o.batch_size},     {"cls_loss", o.cls_loss},
          {"reg_loss", o.reg_loss},        {"seed", o.seed},                 {"max_images", o.max_images}};
}

struct Checkpoint {
  int64_t epoch = 0;
  double train_seconds = 0;
  int64_t train_images = 0;
};

void save_checkpoint(const fs::path& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer, const json& identity,
                     const Checkpoint& state) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("epoch", c10::IValue(state.epoch));
  archive.write("train_seconds", c10::IValue(state.train_seconds));
  archive.write("train_images", c10::IValue(state.train_images));
  archive.write("identity", c10::IValue(identity.dump()));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  std::string bytes;
  archive.save_to([&](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_atomic(path.string(), bytes);
}

std::optional<Checkpoint> load_checkpoint(const fs::path& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                          const json& identity) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  torch::serialize::InputArchive archive, model_archive, optimizer_archive;
  Checkpoint state;
  try {
    archive.load_from(path.string());
    c10::IValue value;
    archive.read("identity", value);
    if (value.toStringRef() != identity.dump())
      throw InputError(path.string() + " was written by a run with other options (" + value.toStringRef() +
                       "); use another --out, or drop --resume to start over");
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    model.load(model_archive);
    optimizer.load(optimizer_archive);
    archive.read("epoch", value);
    state.epoch = value.toInt();
    archive.read("train_seconds", value);
    state.train_seconds = value.toDouble();
    archive.read("train_images", value);
    state.train_images = value.toInt();
    at::Tensor rng;
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw InputError(path.string() + ": cannot resume from this checkpoint: " + e.what_without_backtrace());
  }
  return state;
}

// Stops training: a loss term or its gradient is not finite.
struct NonFinite {
  std::string message;
};

void set_lr(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

// Linear warm-up from lr/10, then cosine decay to lr/20.
double scheduled_lr(double lr, int64_t iteration, int64_t total) {
  const int64_t warmup = std::min<int64_t>(300, std::max<int64_t>(1, total / 8));
  if (iteration < warmup) return lr * (0.1 + 0.9 * double(iteration) / warmup);
  const double t = double(iteration - warmup) / std::max<int64_t>(1, total - warmup);
  return lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t))));
}

bool finite_gradients(const std::vector<at::Tensor>& parameters) {
  for (const at::Tensor& p : parameters)
    if (p.grad().defined() && !p.grad().isfinite().all().item<bool>()) return false;
  return true;
}

json metrics_json(const std::string& status, const std::string& message) {
  json m = {{"status", status}, {"message", message}};
  for (std::string_view name : data::CocoStats::kNames) m[std::string(name)] = nullptr;
  return m;
}

}  // namespace

void TrainOptions::validate() const {
  const std::vector<std::string>& known = detector_names();
  if (std::find(known.begin(), known.end(), detector) == known.end())
    throw InputError("--detector " + detector + ": unknown detector");
  if (data.empty()) throw InputError("--data is required");
  if (out.empty()) throw InputError("--out is required");
  if (epochs < 0) throw InputError("--epochs must be >= 0");
  if (device != "cpu" && device != "cuda") throw InputError("--device " + device + ": use cpu or cuda");
  if (image_size < 32 || image_size > 2048) throw InputError("--image-size must be 32..2048");
  if (batch_size < 1) throw InputError("--batch-size must be >= 1");
  if (!(lr > 0)) throw InputError("--lr must be > 0");
  if (threads < 0) throw InputError("--threads must be >= 0");
  if (workers < 1) throw InputError("--workers must be >= 1");
  if (stop_after < 0) throw InputError("--stop-after must be >= 0");
  model.validate();
}

int train_detector(const TrainOptions& options) {
  options.validate();
  const auto run_start = Clock::now();
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) throw Error("cannot create the run directory " + options.out.string() + ": " + ec.message());
  const fs::path metrics_path = options.out / "metrics.json";
  auto write_metrics = [&](const json& m) { write_file_atomic(metrics_path.string(), m.dump(2) + "\n"); };

  try {
    if (options.device == "cuda" && !torch::cuda::is_available())
      throw UnavailableError("--device cuda: no CUDA device is available to LibTorch (this build or machine has none)");
    const at::Device device = options.device == "cuda" ? at::Device(at::kCUDA) : at::Device(at::kCPU);
    if (options.threads > 0) at::set_num_threads(options.threads);
    torch::manual_seed(options.seed);

    // Data. Subsets are written into the run directory and read from there.
    data::LoaderOptions train_options = data::split_options(options.data, "train");
    data::LoaderOptions val_options = data::split_options(options.data, "val");
    train_options.annotations = subset(train_options.annotations, options.max_images, options.out / "subset_train.json");
    val_options.annotations = subset(val_options.annotations, options.max_val_images, options.out / "subset_val.json");
    for (data::LoaderOptions* o : {&train_options, &val_options}) {
      o->batch_size = options.batch_size;
      o->target_size = options.image_size;
      o->seed = options.seed;
      o->workers = options.workers;
    }
    train_options.shuffle = true;
    train_options.flip_probability = options.flip;
    train_options.skip_empty = true;
    train_options.drop_last = true;
    data::DataLoader train_loader(train_options);
    if (train_loader.batches_per_epoch() == 0)
      throw InputError(train_options.annotations.string() + ": fewer training images with objects than one batch (" +
                       std::to_string(options.batch_size) + ")");

    // Model and losses.
    ModelConfig config = options.model;
    config.num_classes = train_loader.labels().size();
    const std::unique_ptr<Detector> detector =
        make_detector(options.detector, config, {.cls = options.cls_loss, .reg = options.reg_loss});
    torch::nn::Module& model = detector->module();
    if (!options.pretrained.empty()) {
      const WeightLoadReport report = load_weights(detector->backbone(), options.pretrained);
      if (!options.quiet)
        std::fprintf(stderr, "loaded %zu backbone tensors from %s (%zu ignored)\n", report.loaded,
                     options.pretrained.string().c_str(), report.ignored.size());
    }
    model.to(device);
    torch::optim::AdamW optimizer(model.parameters(),
                                  torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));

    const json identity = run_identity(options);
    const fs::path checkpoint_path = options.out / "checkpoint.pt";
    Checkpoint state;
    if (options.resume) {
      if (std::optional<Checkpoint> loaded = load_checkpoint(checkpoint_path, model, optimizer, identity)) {
        state = *loaded;
        if (!options.quiet)
          std::fprintf(stderr, "resuming %s after epoch %lld\n", checkpoint_path.string().c_str(),
                       static_cast<long long>(state.epoch));
      }
    }

    // Training.
    const size_t iterations = train_loader.batches_per_epoch();
    const int64_t total_iterations = static_cast<int64_t>(iterations) * options.epochs;
    Progress progress(options.quiet, options.epochs, iterations);
    if (!options.quiet && state.epoch == 0)
      progress.line(detector->describe() + ", " + std::to_string(train_loader.images()) + " images of " +
                    std::to_string(options.image_size) + " px, batch " + std::to_string(options.batch_size) + ", " +
                    std::to_string(iterations) + " iterations per epoch");
    std::vector<at::Tensor> parameters = model.parameters();
    const int64_t first_epoch = state.epoch;
    for (int64_t epoch = state.epoch; epoch < options.epochs; ++epoch) {
      const auto epoch_start = Clock::now();
      model.train();
      train_loader.start_epoch(static_cast<uint64_t>(epoch));
      progress.start_epoch(static_cast<int>(epoch));
      size_t done = 0;
      while (std::optional<data::Batch> batch = train_loader.next()) {
        const at::Tensor images = pixels_tensor(*batch, device);
        const int64_t iteration = epoch * static_cast<int64_t>(iterations) + static_cast<int64_t>(done);
        set_lr(optimizer, scheduled_lr(options.lr, iteration, total_iterations));
        // The RNG state before the forward pass, so that a term's gradient can
        // be recomputed on exactly the same samples (two-stage detectors sample).
        const at::Tensor rng_before = at::detail::getDefaultCPUGenerator().get_state();
        const std::vector<LossTerm> terms = detector->losses(images, batch->targets);
        std::vector<double> values;
        for (const LossTerm& term : terms) values.push_back(term.value.item<double>());
        const std::string where = " at epoch " + std::to_string(epoch + 1) + ", iteration " + std::to_string(done + 1);
        for (size_t t = 0; t < terms.size(); ++t)
          if (!std::isfinite(values[t]))
            throw NonFinite{"the " + terms[t].name + " loss is " + (std::isnan(values[t]) ? "NaN" : "infinite") + where};
        optimizer.zero_grad();
        at::Tensor total = terms.front().value;
        for (size_t t = 1; t < terms.size(); ++t) total = total + terms[t].value;
        total.backward();
        if (!finite_gradients(parameters)) {
          // Find the term whose gradient is not finite: back-propagate each alone.
          for (size_t t = 0; t < terms.size(); ++t) {
            optimizer.zero_grad();
            at::Generator generator = at::detail::getDefaultCPUGenerator();
            generator.set_state(rng_before);
            detector->losses(images, batch->targets)[t].value.backward();
            if (!finite_gradients(parameters))
              throw NonFinite{"the gradient of the " + terms[t].name + " loss is NaN or infinite" + where};
          }
          throw NonFinite{"the gradient of the total loss is NaN or infinite" + where};
        }
        torch::nn::utils::clip_grad_norm_(parameters, options.grad_clip);
        optimizer.step();
        ++done;
        state.train_images += batch->size;
        progress.step(done, terms, values, iterations * static_cast<size_t>(options.epochs - epoch - 1));
      }
      progress.end_epoch();
      state.epoch = epoch + 1;
      state.train_seconds += seconds_since(epoch_start);
      save_checkpoint(checkpoint_path, model, optimizer, identity, state);
      if (options.stop_after > 0 && epoch + 1 - first_epoch >= options.stop_after && epoch + 1 < options.epochs) {
        progress.line("stopped after epoch " + std::to_string(epoch + 1) + "; continue with --resume");
        return 0;
      }
    }

    // Evaluation on the val split.
    model.eval();
    data::DataLoader val_loader(val_options);
    std::vector<data::Detection> detections;
    {
      at::NoGradGuard no_grad;
      val_loader.start_epoch(0);
      while (std::optional<data::Batch> batch = val_loader.next()) {
        const std::vector<ImageDetections> found = detector->detect(pixels_tensor(*batch, device), batch->targets);
        for (size_t i = 0; i < found.size(); ++i) {
          std::vector<data::Detection> d = to_coco(found[i], batch->targets[i], val_loader.labels());
          detections.insert(detections.end(), d.begin(), d.end());
        }
      }
    }
    const data::CocoStats stats = data::evaluate_bbox(val_loader.dataset(), detections);
    write_file_atomic((options.out / "detections.json").string(), data::results_json(detections).dump() + "\n");
    json m = metrics_json("ok", "");
    const json coco = data::to_json(stats);
    for (const auto& [key, value] : coco.items()) m[key] = value;
    m["epochs"] = state.epoch;
    m["seconds"] = seconds_since(run_start);
    m["train_seconds"] = state.train_seconds;
    m["images_per_s"] = state.train_seconds > 0 ? state.train_images / state.train_seconds : 0.0;
    m["detections"] = detections.size();
    write_metrics(m);
    if (!options.quiet) {
      std::fprintf(stderr, "%s", data::summary_text(stats).c_str());
      std::fprintf(stderr, "wrote %s\n", metrics_path.string().c_str());
    }
    return 0;
  } catch (const NonFinite& stop) {
    json m = metrics_json("nonfinite", stop.message);
    m["seconds"] = seconds_since(run_start);
    write_metrics(m);
    std::fprintf(stderr, "%slossforge: training stopped: %s\n", options.quiet || !isatty(STDERR_FILENO) ? "" : "\n",
                 stop.message.c_str());
    return kNonFiniteStatus;
  } catch (const c10::Error& e) {
    // LibTorch's own failures (out of memory, a CUDA error): reported in the convention.
    const std::string message = std::string("LibTorch: ") + e.what_without_backtrace();
    json m = metrics_json("failed", message);
    m["seconds"] = seconds_since(run_start);
    try {
      write_metrics(m);
    } catch (const std::exception&) {
    }
    throw Error(message.substr(0, message.find('\n')));
  } catch (const std::exception& e) {
    json m = metrics_json("failed", e.what());
    m["seconds"] = seconds_since(run_start);
    try {
      write_metrics(m);
    } catch (const std::exception&) {
      // The original failure is the one to report.
    }
    throw;
  }
}

}  // namespace lossforge::detectors
