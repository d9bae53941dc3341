// `lossforge data`: the bundled synthetic detection dataset (`synth`) and COCO
// bbox evaluation of any results file against any annotation file (`eval`).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "detectors/data/coco_eval.hpp"
#include "detectors/data/synth.hpp"

namespace lossforge::cli {
namespace {

struct DataArgs {
  // synth
  std::string out;
  data::SynthOptions synth;
  // eval
  std::string gt;
  std::string dt;
  bool json = false;
};

int run_synth(DataArgs& args, bool max_size_given) {
  // A smaller --size alone scales the largest objects down with it (144 of 160 px).
  if (!max_size_given) args.synth.max_object_size = std::min(args.synth.max_object_size, 0.9 * args.synth.image_size);
  data::write_synthetic_dataset(args.out, args.synth);
  std::cout << "wrote " << args.synth.train << " train and " << args.synth.val << " val images to " << args.out << "\n";
  return exit_code::kOk;
}

int run_eval(const DataArgs& args) {
  const data::CocoDataset gt = data::load_coco(args.gt);
  const std::vector<data::Detection> dt = data::load_results(args.dt);
  data::CocoStats stats;
  try {
    stats = data::evaluate_bbox(gt, dt);
  } catch (const InputError& e) {
    throw InputError(args.dt + ": " + e.what());
  }
  if (args.json)
    std::cout << data::to_json(stats).dump() << "\n";
  else
    std::cout << data::summary_text(stats);
  return exit_code::kOk;
}

constexpr const char* kSynthFooter = R"(Writes DIR/annotations/instances_{train,val}.json and DIR/images/{train,val}/NNNNNN.png:
five classes (disc, square, triangle, ring, cross) with their own textures, COCO small, medium
and large objects, occlusion, distractors and pixel noise. The same options give the same bytes.
)";

constexpr const char* kEvalFooter = R"(RESULTS.json is the standard COCO results list: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...].
Prints pycocotools' 12-line summary; with --json {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
"AR100", "ARs", "ARm", "ARl"} (-1 where no category has ground truth in the range).
)";

}  // namespace

Command add_data_command(CLI::App& parent) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* app = parent.add_subcommand("data", "Detection data: the synthetic dataset and COCO evaluation");
  app->require_subcommand(1);

  CLI::App* synth = app->add_subcommand("synth", "Write the synthetic detection dataset in COCO format");
  data::SynthOptions& s = args->synth;
  synth->add_option("--out", args->out, "Output folder")->type_name("DIR")->required();
  synth->add_option("--train", s.train, "Training images")->capture_default_str();
  synth->add_option("--val", s.val, "Validation images")->capture_default_str();
  synth->add_option("--seed", s.seed, "Random seed")->capture_default_str();
  synth->add_option("--size", s.image_size, "Image side in pixels")->capture_default_str();
  synth->add_option("--min-objects", s.min_objects, "Fewest objects per image")->capture_default_str();
  synth->add_option("--max-objects", s.max_objects, "Most objects per image")->capture_default_str();
  synth->add_option("--min-object-size", s.min_object_size, "Smallest object side, pixels")->capture_default_str();
  CLI::Option* max_size =
      synth->add_option("--max-object-size", s.max_object_size, "Largest object side, pixels (at most 0.9 x --size unless given)")
          ->capture_default_str();
  synth->add_option("--clutter", s.clutter, "Most distractors per image")->capture_default_str();
  synth->add_option("--noise", s.noise, "Pixel noise standard deviation (0..1 scale)")->capture_default_str();
  synth->add_option("--min-visible", s.min_visible, "Share of each object that stays visible")->capture_default_str();
  synth->add_option("--threads", s.threads, "Rendering threads (0: all cores)")->capture_default_str();
  synth->footer(kSynthFooter);

  CLI::App* eval = app->add_subcommand("eval", "COCO bbox evaluation (pycocotools' COCOeval) of a results file");
  eval->add_option("--gt", args->gt, "COCO annotation file (ground truth)")->type_name("GT.json")->required();
  eval->add_option("--dt", args->dt, "COCO results file (detections)")->type_name("RESULTS.json")->required();
  eval->add_flag("--json", args->json, "Print the 12 numbers as a JSON object");
  eval->footer(kEvalFooter);

  return {app, [args, synth, eval, max_size] {
            if (synth->parsed()) return run_synth(*args, max_size->count() > 0);
            if (eval->parsed()) return run_eval(*args);
            return exit_code::kUsage;
          }};
}

}  // namespace lossforge::cli
