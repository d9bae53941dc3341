// Functional fingerprints of candidate losses: which candidates compute the
// same function, however they are written.
//
// The canonical hash (compiler/canonical.hpp) catches what algebra can prove;
// the fingerprint catches the rest (sigmoid(-x) vs 1 - sigmoid(x), a cancelled
// term hidden under a different shape) by evaluating the candidate and its
// gradient for the pred input on fixed probe inputs that look like real data
// of the preset, and hashing the numbers after rounding them to a relative grid.
// Values count relative to the first finite one, so losses that differ by a
// constant (the same gradients: they train the same) are one function.
//
// Tolerance: values are mapped by asinh (relative for |v| > 1, absolute below)
// and rounded to cells of kFingerprintTolerance. Two numbers within the
// tolerance may still straddle a cell boundary, so every fingerprint carries two
// hashes, one per grid, the second offset by half a cell: `same_function` and
// FingerprintSet call candidates equal when either grid agrees. NaN, +inf and
// -inf are cells of their own, so broken candidates fingerprint deterministically.
#pragma once

#include <cstdint>
#include <unordered_set>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/presets.hpp"
#include "runtime/tensor.hpp"

namespace lossforge {

inline constexpr double kFingerprintTolerance = 1e-6;

// Deterministic probe inputs of a preset, one Array per preset input: logits,
// one-hot labels with background rows, IoU values for positives; for `reg`,
// ground-truth boxes and predictions from near-perfect to disjoint.
std::vector<Array<double>> probe_inputs(const Preset& preset, size_t rows = 16, uint64_t seed = 0x5EED);

struct Fingerprint {
  uint64_t grid = 0;          // hash on the grid of cells
  uint64_t offset_grid = 0;   // hash on the grid shifted by half a cell
};

// Values and pred-input gradients of `candidate` (a real expression over the
// preset's terminals) on the preset's probes, evaluated in double.
Fingerprint fingerprint(const Preset& preset, const Expr& candidate);

inline bool same_function(const Fingerprint& a, const Fingerprint& b) {
  return a.grid == b.grid || a.offset_grid == b.offset_grid;
}

// The fingerprints seen so far; insert() says whether a candidate is new.
class FingerprintSet {
 public:
  // False (and nothing stored) when an equal fingerprint is already in the set.
  bool insert(const Fingerprint& f);
  size_t size() const { return grid_.size(); }

 private:
  std::unordered_set<uint64_t> grid_, offset_grid_;
};

}  // namespace lossforge
