#include "compiler/box_lanes.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace lossforge {
namespace {

// x86's unpack generalised: within every `group` lanes, the low (or high)
// half of a's and of b's lanes, interleaved `chunk` lanes at a time.
std::vector<int> unpack_mask(int lanes, int group, int chunk, bool high) {
  std::vector<int> mask;
  for (int start = 0; start < lanes; start += group) {
    const int half = start + (high ? group / 2 : 0);
    for (int c = 0; c < group / 2; c += chunk) {
      for (int i = 0; i < chunk; ++i) mask.push_back(half + c + i);
      for (int i = 0; i < chunk; ++i) mask.push_back(lanes + half + c + i);
    }
  }
  return mask;
}

std::vector<int> shuffle(const std::vector<int>& a, const std::vector<int>& b, const std::vector<int>& mask) {
  std::vector<int> out;
  for (int m : mask) out.push_back(m < int(a.size()) ? a[size_t(m)] : b[size_t(m) - a.size()]);
  return out;
}

BoxLanes build(int lanes) {
  if (lanes < 4 || lanes % 4 != 0) throw std::logic_error("box_lanes: " + std::to_string(lanes) + " lanes");
  BoxLanes shape;
  shape.lanes = lanes;
  shape.pairs_low = unpack_mask(lanes, 4, 1, false);
  shape.pairs_high = unpack_mask(lanes, 4, 1, true);
  shape.quads_low = unpack_mask(lanes, 4, 2, false);
  shape.quads_high = unpack_mask(lanes, 4, 2, true);
  // Label each value as it lies in memory, 4 row + coordinate, and follow it.
  LaneLabels memory;
  for (int v = 0; v < 4; ++v)
    for (int lane = 0; lane < lanes; ++lane) memory[size_t(v)].push_back(v * lanes + lane);
  const LaneLabels coordinates = transpose_box_lanes(shape, memory);
  shape.row_of_lane.resize(size_t(lanes));
  shape.lane_of_row.resize(size_t(lanes));
  for (int lane = 0; lane < lanes; ++lane) {
    const int row = coordinates[0][size_t(lane)] / 4;
    shape.row_of_lane[size_t(lane)] = row;
    shape.lane_of_row[size_t(row)] = lane;
  }
  for (int k = 0; k < 4; ++k)
    for (int lane = 0; lane < lanes; ++lane)
      if (coordinates[size_t(k)][size_t(lane)] != 4 * shape.row_of_lane[size_t(lane)] + k)
        throw std::logic_error("box_lanes: the shuffles do not transpose " + std::to_string(lanes) + " lanes");
  if (transpose_box_lanes(shape, coordinates) != memory)
    throw std::logic_error("box_lanes: the shuffles do not undo themselves for " + std::to_string(lanes) + " lanes");
  return shape;
}

}  // namespace

LaneLabels transpose_box_lanes(const BoxLanes& shape, const LaneLabels& v) {
  const std::vector<int> t0 = shuffle(v[0], v[1], shape.pairs_low), t1 = shuffle(v[0], v[1], shape.pairs_high);
  const std::vector<int> t2 = shuffle(v[2], v[3], shape.pairs_low), t3 = shuffle(v[2], v[3], shape.pairs_high);
  return {shuffle(t0, t2, shape.quads_low), shuffle(t0, t2, shape.quads_high), shuffle(t1, t3, shape.quads_low),
          shuffle(t1, t3, shape.quads_high)};
}

const BoxLanes& box_lanes(int lanes) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<BoxLanes>> shapes;
  const std::lock_guard lock(mutex);
  std::unique_ptr<BoxLanes>& shape = shapes[lanes];
  if (!shape) shape = std::make_unique<BoxLanes>(build(lanes));
  return *shape;
}

}  // namespace lossforge
