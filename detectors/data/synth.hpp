// The bundled synthetic detection dataset: small enough that a tiny FCOS
// learns it on a CPU in minutes, hard enough that losses differ on it.
//
// `lossforge data synth --out DIR --train N --val M --seed S [--size PX]`
// writes (layout of detectors/data/loader.hpp):
//   DIR/annotations/instances_train.json, DIR/annotations/instances_val.json
//   DIR/images/train/000001.png ..., DIR/images/val/000001.png ...
// Image ids are 1..N for train and N+1..N+M for val; annotation ids start at 1.
//
// Classes (category ids 1..5), each a shape with its own texture, in a random
// colour (colour says nothing about the class):
//   1 disc      solid fill
//   2 square    horizontal stripes
//   3 triangle  checkerboard (apex up)
//   4 ring      solid, hole of half the diameter
//   5 cross     diagonal stripes (a plus sign, arms one third of the side)
// Per image: a smooth two-colour gradient background; 0..clutter distractors
// (drawn first) that belong to no class: thin line segments, elongated
// ellipses (aspect >= 2.5) and speckle clusters; then min..max_objects
// objects whose side is uniform in [min_object_size, max_object_size] pixels
// (aspect 0.8..1.25), wholly inside the image, drawn largest first; then
// Gaussian-like pixel noise of standard deviation `noise` (0..1 scale).
//
// Occlusion: later (smaller) objects cover earlier ones. A placement that
// would leave an earlier object less than `min_visible` of its pixels visible
// is retried elsewhere (up to 10 times, then the object is left out), so every
// drawn object is annotated and none is hidden beyond recognition. bbox is
// the object's full extent (occluded parts included), `area` its visible
// pixel count (COCO's segmentation area), which decides COCO's small (< 32²),
// medium and large (>= 96²) ranges. With the defaults (160-px images, sides
// 8..144 px, 1..6 objects) 1000 images hold about 3400 objects: 23% small,
// 72% medium, 5% large (a large object must show 96² pixels of a shape that
// fills 50..100% of its box). Larger --size and --max-object-size give more
// large objects, a smaller --min-object-size more small ones.
//
// Deterministic: the same options give the same bytes on one platform,
// whatever the number of threads. Each image has its own random stream derived from (seed,
// split, index), so the val split does not depend on the size of train.
// 1000 images take about 3 s of CPU time (rendering and PNG encoding), on
// all cores by default.
//
// A held-out variant for the search (different seed and object statistics)
// is the same call with other options, e.g. --seed 7 --max-objects 8
// --noise 0.1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "detectors/data/coco.hpp"

namespace lossforge::data {

struct SynthOptions {
  size_t train = 1000;
  size_t val = 200;
  uint64_t seed = 0;
  int image_size = 160;         // square images, pixels
  int min_objects = 1;          // per image
  int max_objects = 6;
  double min_object_size = 8;   // object side, pixels
  double max_object_size = 144;
  int clutter = 3;              // distractors per image: 0..clutter
  double noise = 0.04;          // Gaussian pixel noise std on a 0..1 scale
  double min_visible = 0.3;     // share of an object's pixels left visible by later objects
  int threads = 0;              // 0: hardware concurrency
};

// The five class names, in category id order (ids 1..5).
const std::vector<std::string>& synthetic_class_names();

// Checks the options; throws lossforge::InputError naming the bad one.
void validate(const SynthOptions& options);

// Writes the dataset under `out` (created if needed; existing files of the
// same names are replaced, the JSON files atomically). Throws lossforge::Error
// when a file cannot be written.
void write_synthetic_dataset(const std::filesystem::path& out, const SynthOptions& options);

// One image of a split without writing it: RGB pixels (height × width × 3)
// and its annotations, for tests. `index` counts from 0 within the split.
struct SynthImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::vector<CocoAnnotation> annotations;  // ids and image_id left 0
};
SynthImage render_synthetic_image(const SynthOptions& options, std::string_view split, size_t index);

}  // namespace lossforge::data
