// Model optimization simulation (SPEC §6, the search's second screening stage).
//
// A candidate that passes the convergence properties may still train badly: its
// gradients may be tiny where the detector starts, huge for easy negatives, or
// point the right way only locally. So we optimise simulated predictions under
// the candidate for a few hundred steps and measure the result:
//
//   binary_cls  a linear scorer on synthetic features of a detection-like batch
//               (many easy negatives, some hard ones, few positives with IoU
//               targets Q), trained with SGD on the candidate's gradient times
//               α_t = 0.25·PY + 0.75·NY; metric: AP of the scores on held-out samples.
//               The candidate's gradient is tabulated once per candidate on a grid
//               of logits for each (Q, PY) kind (one interpreter batch), so the
//               steps themselves cost no loss evaluations.
//   multi_cls   a linear softmax classifier (3 classes + background) trained the
//               same way; metric: mean AP over the classes on held-out samples.
//   reg         predicted boxes moved by SGD along the candidate's gradient from
//               starts as FCOS makes them (distances to the sides from a point
//               inside the target, each off by a factor 0.2..2); metric: mean final IoU.
//
// The optimiser is SGD with momentum, gradient clipping and a cosine schedule,
// as detectors are trained, so a candidate's gradient scale matters as it will
// in proxy training (reg: steps scaled by the target's area, since IoU-like
// gradients scale as 1/size). A candidate passes when its metric reaches
// `min_ratio` times what the preset's reference loss (focal, cross-entropy,
// GIoU) reaches in the same simulation.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/loss.hpp"
#include "compiler/presets.hpp"

namespace lossforge {

struct SimulationOptions {
  int steps = 200;          // optimiser steps
  double learning_rate = 1;  // multiplier on the base rates of SGD (0.1 binary_cls, 0.5 multi_cls, 0.05 reg)
  double min_ratio = 0.9;   // of the reference loss's metric
  uint64_t seed = 0xD17EC7;
};

struct SimulationResult {
  bool passed = false;
  std::string metric_name;  // "AP" or "IoU"
  double metric = 0;        // what the candidate reached (NaN: it broke down)
  double reference = 0;     // what the preset's reference loss reaches
  std::string detail;       // one line: why it failed, or the numbers
};

// Simulates training under `loss` (which has `preset`'s signature, params at their defaults).
SimulationResult simulate_optimization(const Loss& loss, const Preset& preset, const SimulationOptions& options = {});

// The reference loss of a preset as formula text: focal (binary_cls),
// cross-entropy (multi_cls), GIoU (reg).
std::string reference_formula(const Preset& preset);

}  // namespace lossforge
