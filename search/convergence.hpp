// Convergence property verification (SPEC §6, the search's first screening
// stage; also `lossforge check` and the REPL's `:check`).
//
// A loss that training can minimise must behave sensibly on inputs like those a
// detector produces. These are cheap mathematical checks on simulated inputs of
// the loss's preset, evaluated in double by the reference interpreter in one
// batch (a few hundred rows; finiteness also in float32). Measured on the 2-core
// build machine: 33 µs per binary_cls candidate, 280 µs per reg candidate, where
// an LLVM compile costs about 20-25 ms: the interpreter is the right engine here.
//
//   every preset  "finite"                    loss and gradient finite over the simulated ranges,
//                                             in float64 and in float32 (as training computes them)
//   binary_cls    "falls as p_gt rises"       positives: the loss falls as sigmoid(X) rises
//                                             towards the IoU target Q (PY = 1)
//                 "rises as a negative's score rises"
//                                             negatives (PY = 0, Q = 0): the loss rises with X
//   multi_cls     "falls as p_gt rises"       raising the ground-truth logit of a row lowers the loss
//                 "rises as a negative's score rises"
//                                             raising another class's logit raises it
//   reg           "falls as IoU rises"        along box trajectories moving towards the target
//                 "minimal at perfect match"  P = G is no worse than any nearby or distant box,
//                                             and strictly better than the trajectories' starts
//
// "Falls" means: never rises by more than a relative tolerance between
// neighbouring points, and ends strictly lower than it started. Each failed
// check names the property and a witness input, one line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/loss.hpp"
#include "compiler/presets.hpp"

namespace lossforge {

struct ConvergenceOptions {
  // Stop at the first failed property (the search's fast path); otherwise every
  // property is checked and reported.
  bool stop_at_first_failure = false;
  // A rise of more than tolerance·max(1, |loss|) between neighbouring points breaks monotonicity.
  double tolerance = 1e-7;
  int points = 24;    // samples along each trajectory
  uint64_t seed = 0x5EED;  // of the random parts of the simulated inputs
};

struct PropertyCheck {
  std::string property;  // "finite", "falls as p_gt rises", "minimal at perfect match", ...
  bool passed = false;
  std::string detail;    // one line: what was checked, or the witness input when it failed
};

struct ConvergenceReport {
  bool passed = false;
  std::vector<PropertyCheck> checks;  // in the order above; stops at a failure with stop_at_first_failure
  // "property: detail" of the first failed check, or "" when all passed.
  std::string first_failure() const;
};

// The preset whose signature `loss` has: the same input types in the same
// order, the first input pred (multi_cls: three real[C]; binary_cls: four real;
// reg: two box). nullptr when none fits.
const Preset* matching_preset(const Loss& loss);

// Checks `loss` (which must have `preset`'s signature; std::invalid_argument
// otherwise) with its params at their defaults.
ConvergenceReport verify_convergence(const Loss& loss, const Preset& preset, const ConvergenceOptions& options = {});

// A bare candidate expression over the preset's terminals, as a Loss.
Loss candidate_loss(const Preset& preset, const Expr& body, std::string name = "candidate");

}  // namespace lossforge
