// Training and evaluating a detector on a COCO-format dataset: what
// `lossforge train` runs, and what the loss search calls as a subprocess
// worker for each candidate on its proxy task.
//
//   TrainOptions o;  o.data = "synth";  o.out = "runs/focal";  o.epochs = 6;
//   int status = train_detector(o);   // 0, or kNonFiniteStatus
//
// The run directory holds (every file written atomically):
//   checkpoint.pt    model + optimizer + epoch + RNG state, after each epoch;
//                    with `resume` a run continues from it
//   metrics.json     {"status": "ok"|"nonfinite"|"failed", "message", the 12
//                    COCO stats AP..ARl, "epochs", "seconds", "images_per_s"}
//   detections.json  the val split's detections as a COCO results file
// The detector (detector.hpp: fcos, atss, faster_rcnn) brings its model,
// targets and loss terms; the loop, checkpoints and evaluation are shared.
// A loss term that becomes NaN or infinite (in value or gradient) stops the
// run with status "nonfinite", a message naming the term (cls, reg,
// centerness, rpn_cls, ...), and kNonFiniteStatus. Other failures write status "failed" and
// rethrow.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "detectors/train/model.hpp"

namespace lossforge::detectors {

inline constexpr int kNonFiniteStatus = 3;

struct TrainOptions {
  std::string detector = "fcos";  // one of detector_names() (detector.hpp)
  std::filesystem::path data;  // DIR with annotations/instances_{train,val}.json and images/
  std::filesystem::path out;   // the run directory
  std::string cls_loss;        // slot specifications (fcos_loss.hpp); empty: the
  std::string reg_loss;        // detector's defaults (focal or CE, and GIoU)
  int epochs = 12;
  std::string device = "cpu";  // "cpu" or "cuda"
  uint64_t seed = 0;
  int threads = 0;             // LibTorch intra-op threads; 0: LibTorch's default
  bool quiet = false;          // no progress output at all
  bool resume = false;         // continue from out/checkpoint.pt when it exists
  int stop_after = 0;          // stop after this many epochs of this invocation, before evaluating
                               // (a time slice, or an interruption in tests); 0: run to the end

  ModelConfig model;           // num_classes is taken from the data
  int image_size = 128;        // longer side of the resized images = canvas side
  int batch_size = 8;
  double lr = 0.002;           // AdamW peak learning rate
  double weight_decay = 0.05;
  double grad_clip = 35;       // max gradient norm
  double flip = 0.5;           // horizontal flip probability in training
  size_t max_images = 0;       // train on the first N images only (by id); 0: all
  size_t max_val_images = 0;   // evaluate on the first N val images; 0: all
  int workers = 2;             // image decoding threads
  std::filesystem::path pretrained;  // optional safetensors with torchvision ResNet weights

  // Throws InputError naming the bad option.
  void validate() const;
};

// Runs training and evaluation; returns 0, or kNonFiniteStatus after a NaN/Inf.
// Throws lossforge::Error (after writing status "failed") for bad data, bad
// losses or a missing device.
int train_detector(const TrainOptions& options);

}  // namespace lossforge::detectors
