// Rows of boxes in vector registers: the shuffles that turn W boxes, as they
// lie in memory (4W values, loaded as 4 vectors of W lanes), into 4 vectors of
// one coordinate each, and back for the gradients (compiler/codegen_llvm.cpp
// emits box kernels this way, a block of W rows at a time).
//
// Two rounds of two-source shuffles, each an x86 unpack within 128 bits for
// floats (vunpcklps/vunpckhps, then vunpcklpd/vunpckhpd on pairs of floats):
//
//   t0 = unpack_low(v0, v1, 1)   t1 = unpack_high(v0, v1, 1)     (pairs of values)
//   t2 = unpack_low(v2, v3, 1)   t3 = unpack_high(v2, v3, 1)
//   x0 = unpack_low(t0, t2, 2)   y0 = unpack_high(t0, t2, 2)     (pairs of pairs)
//   x1 = unpack_low(t1, t3, 2)   y1 = unpack_high(t1, t3, 2)
//
// Within every 4 lanes this is a 4x4 transpose, which is its own inverse, so
// the same shuffles store the coordinates' gradients back as boxes. Across
// groups of 4 lanes the rows come out in another order (row_of_lane): values
// read or written one per row (a real input, the loss) are permuted to match
// by one shuffle each. Every mask is a legal vector's shuffle: the vectoriser's
// interleaved <4W x T> loads and stores took LLVM's instruction selector 2-3x
// as long (bench/README.md, session 13).
#pragma once

#include <array>
#include <vector>

namespace lossforge {

struct BoxLanes {
  int lanes = 0;
  // shufflevector masks (indices into the two sources, concatenated)
  std::vector<int> pairs_low, pairs_high, quads_low, quads_high;
  std::vector<int> row_of_lane;  // the row (0..lanes-1) each lane holds after the transpose
  std::vector<int> lane_of_row;  // its inverse: the mask that puts rows back in order
};

// For vectors of `lanes` values, a multiple of 4. Checked on indices when built
// (std::logic_error if the shuffles were not a transpose).
const BoxLanes& box_lanes(int lanes);

// What the shuffles compute, on labels (the check, and tests).
using LaneLabels = std::array<std::vector<int>, 4>;
LaneLabels transpose_box_lanes(const BoxLanes& shape, const LaneLabels& v);

}  // namespace lossforge
