#include "runtime/benchmark_inputs.hpp"

#include <algorithm>
#include <optional>
#include <random>

#include "runtime/input_check.hpp"

namespace lossforge {

template <class T>
std::vector<Array<T>> benchmark_inputs(const Loss& loss, size_t rows, size_t width, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> logit(-4, 4), unit(0, 1);
  std::vector<Array<T>> inputs;
  std::optional<size_t> first_box;  // index into inputs
  for (const LossInput& in : loss.inputs) {
    const size_t w = in.type.is_real() ? 1 : in.type.is_box() ? 4 : numeric_width(in.type.width()).value_or(width);
    Array<T> a(rows, w);
    for (size_t r = 0; r < rows; ++r) {
      T* row = a.row(r);
      if (in.type.is_box()) {
        double x = unit(rng) * 100, y = unit(rng) * 100, bw = 1 + unit(rng) * 49, bh = 1 + unit(rng) * 49;
        if (first_box) {
          const T* near = inputs[*first_box].row(r);
          x = near[0] + unit(rng) * 5, y = near[1] + unit(rng) * 5;
          bw = std::max(1.0, double(near[2] - near[0]) + unit(rng) * 5 - 2.5);
          bh = std::max(1.0, double(near[3] - near[1]) + unit(rng) * 5 - 2.5);
        }
        row[0] = T(x), row[1] = T(y), row[2] = T(x + bw), row[3] = T(y + bh);
      } else if (in.pred) {
        for (size_t c = 0; c < w; ++c) row[c] = T(logit(rng));
      } else if (in.type.is_vec()) {
        row[std::uniform_int_distribution<size_t>(0, w - 1)(rng)] = T(1);
      } else {
        row[0] = T(unit(rng));
      }
    }
    if (in.type.is_box() && !first_box) first_box = inputs.size();
    inputs.push_back(std::move(a));
  }
  return inputs;
}

template std::vector<Array<float>> benchmark_inputs(const Loss&, size_t, size_t, uint64_t);
template std::vector<Array<double>> benchmark_inputs(const Loss&, size_t, size_t, uint64_t);

}  // namespace lossforge
