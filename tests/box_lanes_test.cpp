// The shuffles that transpose a block of boxes in vector registers
// (compiler/box_lanes.hpp), followed on labels.
#include "compiler/box_lanes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace lossforge {
namespace {

LaneLabels as_in_memory(int lanes) {  // value 4 row + coordinate, 4 vectors of `lanes`
  LaneLabels v;
  for (int i = 0; i < 4; ++i)
    for (int lane = 0; lane < lanes; ++lane) v[size_t(i)].push_back(i * lanes + lane);
  return v;
}

TEST(BoxLanes, FourVectorsOfBoxesBecomeOneVectorPerCoordinateAndBack) {
  for (int lanes : {4, 8, 16, 32}) {
    SCOPED_TRACE(lanes);
    const BoxLanes& shape = box_lanes(lanes);
    EXPECT_EQ(shape.lanes, lanes);
    // Every row once, and lane_of_row undoes row_of_lane.
    std::vector<int> rows = shape.row_of_lane;
    std::sort(rows.begin(), rows.end());
    std::vector<int> every(static_cast<size_t>(lanes));
    std::iota(every.begin(), every.end(), 0);
    EXPECT_EQ(rows, every);
    for (int row = 0; row < lanes; ++row) EXPECT_EQ(shape.row_of_lane[size_t(shape.lane_of_row[size_t(row)])], row);

    const LaneLabels coordinates = transpose_box_lanes(shape, as_in_memory(lanes));
    for (int k = 0; k < 4; ++k)
      for (int lane = 0; lane < lanes; ++lane)
        EXPECT_EQ(coordinates[size_t(k)][size_t(lane)], 4 * shape.row_of_lane[size_t(lane)] + k);
    EXPECT_EQ(transpose_box_lanes(shape, coordinates), as_in_memory(lanes));
  }
}

// Each shuffle moves values only within groups of 4 lanes (128 bits of
// floats), so that x86 does it in one unpack instruction.
TEST(BoxLanes, ShufflesStayWithinGroupsOfFourLanes) {
  for (int lanes : {8, 16}) {
    const BoxLanes& shape = box_lanes(lanes);
    for (const std::vector<int>* mask : {&shape.pairs_low, &shape.pairs_high, &shape.quads_low, &shape.quads_high}) {
      ASSERT_EQ(mask->size(), size_t(lanes));
      for (int lane = 0; lane < lanes; ++lane) EXPECT_EQ((*mask)[size_t(lane)] % lanes / 4, lane / 4) << lanes;
    }
  }
  // 8 floats in AVX2: rows 0, 2, 4, 6 in the low half, 1, 3, 5, 7 in the high one.
  EXPECT_EQ(box_lanes(8).row_of_lane, (std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7}));
  EXPECT_EQ(box_lanes(4).row_of_lane, (std::vector<int>{0, 1, 2, 3}));
}

TEST(BoxLanes, LaneCountsThatAreNotMultiplesOfFourAreRejected) {
  EXPECT_THROW(box_lanes(6), std::logic_error);
  EXPECT_THROW(box_lanes(2), std::logic_error);
}

}  // namespace
}  // namespace lossforge
