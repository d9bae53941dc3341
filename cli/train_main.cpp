// lossforge-train: the detector trainer behind `lossforge train` (which execs
// it; see cli/train_command.cpp for why it is a separate executable). The
// loss search runs it as a subprocess worker: the options, the files in the
// run directory (detectors/train/trainer.hpp) and the exit statuses are a
// contract.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "cli/report_errors.hpp"
#include "detectors/train/detector.hpp"
#include "detectors/train/trainer.hpp"

namespace {

using namespace lossforge;
using namespace lossforge::cli;

constexpr const char* kFooter = R"(Detectors: fcos and atss (one-stage; the cls slot is binary_cls), faster_rcnn (two-stage; the
cls slot is multi_cls, one row of C+1 logits per sampled RoI, background last).
Losses (--cls-loss, --reg-loss): FILE.loss (its only loss), FILE.loss:NAME, or a bare formula (infix
or DEAP prefix) over the slot's preset: binary_cls (X logit, Q, PY, NY; multiplied by
alpha_t = 0.25*PY + 0.75*NY outside the formula), multi_cls (X logits, Y one-hot, Z the RoI's IoU)
and reg (boxes P, G; the formula sees U, I, E).
Defaults: examples/losses/fcos_focal.loss (one-stage) or rcnn_cross_entropy.loss (two-stage), and
giou.loss (compiled in).
Writes RUN/checkpoint.pt (each epoch), RUN/metrics.json ({"status", "message", "AP", ..., "ARl",
"epochs", "seconds", "images_per_s"}) and RUN/detections.json (COCO results on the val split).
Exit status: 0 ok, 1 bad input or no such device, 2 bad command line, 3 a loss term became NaN/infinite.
)";

}  // namespace

int main(int argc, char** argv) {
  detectors::TrainOptions o;
  std::string backbone = "resnet18";
  CLI::App app("Train a detector with lossforge losses and evaluate it with COCO mAP", "lossforge train");
  app.footer(kFooter);
  app.add_option("--detector", o.detector, "Detector")->check(CLI::IsMember(detectors::detector_names()))->capture_default_str();
  app.add_option("--data", o.data, "COCO-format dataset: DIR/annotations/instances_{train,val}.json, DIR/images/")
      ->required()
      ->type_name("DIR");
  app.add_option("--cls-loss", o.cls_loss, "Classification loss (binary_cls slot; multi_cls for faster_rcnn)")
      ->type_name("SPEC");
  app.add_option("--reg-loss", o.reg_loss, "Regression loss (reg slot)")->type_name("SPEC");
  app.add_option("--epochs", o.epochs, "Training epochs")->capture_default_str();
  app.add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--out", o.out, "Run directory (created)")->required()->type_name("RUN");
  app.add_option("--seed", o.seed, "Seed of the initialisation, shuffling and flips")->capture_default_str();
  app.add_option("--threads", o.threads, "LibTorch threads (0: its default)")->capture_default_str();
  app.add_flag("--quiet", o.quiet, "No progress output");
  app.add_flag("--resume", o.resume, "Continue from RUN/checkpoint.pt when it exists");
  app.add_option("--stop-after", o.stop_after, "Stop after N epochs of this invocation, before evaluating (resume later)")
      ->type_name("N");
  app.add_option("--backbone", backbone, "resnet18 or resnet50")
      ->check(CLI::IsMember({"resnet18", "resnet50"}))
      ->capture_default_str();
  app.add_option("--width", o.model.width, "Backbone channel multiplier (1: torchvision's)")->capture_default_str();
  app.add_option("--fpn-channels", o.model.fpn_channels, "FPN and head channels")->capture_default_str();
  app.add_option("--tower-convs", o.model.tower_convs, "3x3 convs per head tower")->capture_default_str();
  app.add_option("--atss-anchor-scale", o.model.atss_anchor_scale,
                 "ATSS: anchor side in strides (the paper's 8 for 800-px images)")
      ->capture_default_str();
  app.add_option("--image-size", o.image_size, "Longer image side after resizing (pixels)")->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Images per batch")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak learning rate (AdamW, warm-up then cosine)")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--flip", o.flip, "Horizontal flip probability in training")->capture_default_str();
  app.add_option("--max-images", o.max_images, "Train on the first N images only (0: all)")->capture_default_str();
  app.add_option("--max-val-images", o.max_val_images, "Evaluate on the first N val images only (0: all)")
      ->capture_default_str();
  app.add_option("--workers", o.workers, "Image decoding threads")->capture_default_str();
  app.add_option("--pretrained", o.pretrained, "ImageNet backbone weights (safetensors, torchvision key names)")
      ->type_name("FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string reason = e.what();
    for (char& c : reason)
      if (c == '\n') c = ' ';
    std::cerr << "lossforge: " << reason << " (see 'lossforge train --help')\n";
    return exit_code::kUsage;
  }
  o.model.depth = backbone == "resnet50" ? 50 : 18;
  return run_reporting_errors([&] { return detectors::train_detector(o); });
}
