// Host data for a batch of loss evaluations: one Array per loss input.
//
// An Array is `rows` rows of `width` values each, row-major: width 1 for a
// `real` input, C for `real[C]`, 4 for a `box` (x1, y1, x2, y2).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace lossforge {

template <class T>
struct Array {
  size_t rows = 0;
  size_t width = 1;
  std::vector<T> data;  // rows * width values

  Array() = default;
  Array(size_t rows, size_t width) : rows(rows), width(width), data(rows * width) {}
  Array(size_t rows, size_t width, std::vector<T> values) : rows(rows), width(width), data(std::move(values)) {}
  T* row(size_t r) { return data.data() + r * width; }
  const T* row(size_t r) const { return data.data() + r * width; }
};

// Rows of values someone else owns (an Array, a torch tensor, a caller's
// buffer): what the compiled kernels read, without a copy. `size` is how many
// values the memory holds, checked against rows x width.
template <class T>
struct ArrayView {
  const T* data = nullptr;
  size_t rows = 0;
  size_t width = 1;
  size_t size = 0;
};
template <class T>
ArrayView<T> view_of(const Array<T>& array) {
  return {array.data.data(), array.rows, array.width, array.data.size()};
}
template <class T>
std::vector<ArrayView<T>> views_of(std::span<const Array<T>> arrays) {
  std::vector<ArrayView<T>> views;
  views.reserve(arrays.size());
  for (const Array<T>& a : arrays) views.push_back(view_of(a));
  return views;
}

}  // namespace lossforge
