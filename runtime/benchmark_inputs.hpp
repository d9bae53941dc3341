// Random inputs for timing a loss (`lossforge bench`, the REPL's :time): one
// Array per input of the loss, shaped like a training batch. Pred values are
// uniform in [-4, 4] (logits, box offsets); the other real inputs uniform in
// [0, 1]; the other real[C] inputs one-hot rows; boxes have sides of 1 to 50
// units, and box inputs after the first lie near it (overlapping pairs, as a
// prediction and its target do). Deterministic for a seed.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/tensor.hpp"

namespace lossforge {

// `width`: the values per row of every real[C] input whose type does not fix it.
template <class T>
std::vector<Array<T>> benchmark_inputs(const Loss& loss, size_t rows, size_t width, uint64_t seed);

extern template std::vector<Array<float>> benchmark_inputs(const Loss&, size_t, size_t, uint64_t);
extern template std::vector<Array<double>> benchmark_inputs(const Loss&, size_t, size_t, uint64_t);

}  // namespace lossforge
