// The random batches `lossforge bench` and the REPL's :time run on
// (runtime/benchmark_inputs.hpp): shapes, value ranges, determinism.
#include <gtest/gtest.h>

#include <algorithm>

#include "compiler/frontend.hpp"
#include "runtime/benchmark_inputs.hpp"

namespace lossforge {
namespace {

TEST(BenchmarkInputs, ShapesRangesAndBoxPairs) {
  const Loss loss = load_module(SourceFile::from_text(
                                    "<test>",
                                    "loss l(pred x: real[C], y: real[C], t: real, pred p: box, g: box, h: box) = "
                                    "dot(x, y) * t + iou(p, g) + iou(p, h)"))
                        .losses.at(0);
  const std::vector<Array<float>> a = benchmark_inputs<float>(loss, 50, 7, 3);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0].width, 7u);
  EXPECT_EQ(a[1].width, 7u);
  EXPECT_EQ(a[2].width, 1u);
  for (size_t r = 0; r < 50; ++r) {
    float ones = 0;
    for (size_t c = 0; c < 7; ++c) {
      EXPECT_GE(a[0].row(r)[c], -4.f);
      EXPECT_LE(a[0].row(r)[c], 4.f);
      ones += a[1].row(r)[c];
    }
    EXPECT_EQ(ones, 1.f) << "y is one-hot";
    EXPECT_GE(a[2].row(r)[0], 0.f);
    EXPECT_LE(a[2].row(r)[0], 1.f);
    const float* p = a[3].row(r);
    EXPECT_GT(p[2], p[0]);
    EXPECT_GT(p[3], p[1]);
    for (size_t later : {4u, 5u}) {  // near the first box: its corner within 5 units, its sides within 2.5
      const float* q = a[later].row(r);
      EXPECT_GT(q[2], q[0]);
      EXPECT_GT(q[3], q[1]);
      EXPECT_GE(q[0], p[0]);
      EXPECT_LE(q[0], p[0] + 5);
      EXPECT_GE(q[1], p[1]);
      EXPECT_LE(q[1], p[1] + 5);
      EXPECT_NEAR(q[2] - q[0], std::max(1.f, p[2] - p[0]), 2.5f + 1e-3f);
    }
  }
  const std::vector<Array<float>> b = benchmark_inputs<float>(loss, 50, 7, 3);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].data, b[i].data) << "the same seed, the same batch";
  EXPECT_NE(benchmark_inputs<float>(loss, 50, 7, 4)[0].data, a[0].data);
}

}  // namespace
}  // namespace lossforge
