#!/usr/bin/env python3
"""Independent reference for lossforge's COCO evaluation: pycocotools itself.

For each seed, random ground truth and detections are written as COCO files,
pycocotools' COCOeval (bbox) evaluates them, and its 12 stats and its printed
summary are written next to them:

  OUT/gt_<seed>.json  OUT/dt_<seed>.json  OUT/stats_<seed>.json  OUT/summary_<seed>.txt

tests/data/coco_reference_test.cpp runs `lossforge data eval` on the same
files and compares. The data is built to exercise every rule: crowd boxes and
detections inside them, every area range and areas exactly at the 32² and 96²
bounds, an `area` field that differs from w*h (COCO's segmentation area),
scores rounded to two decimals (ties within and across images), integer
coordinates (IoU ties and IoUs exactly at thresholds), images without ground
truth or without detections, a category without ground truth, detections of a
category the ground truth does not list, more than 100 detections in an image,
image ids in an order different from the file's, and annotation id 0 (whose
matches pycocotools counts as unmatched).

Exit status 3 with a message when pycocotools or numpy is missing: the test
reports that as a failure, never as a skip.
"""
import argparse
import contextlib
import io
import json
import os
import random
import sys

try:
    import numpy as np  # noqa: F401  (pycocotools needs it)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as error:
    sys.stderr.write(f"coco_reference.py: pycocotools is not available to {sys.executable} ({error}); "
                     "install it with: python3 -m pip install pycocotools\n")
    sys.exit(3)


def random_box(rng, image_w, image_h):
    scale = rng.choice(["small", "medium", "large", "edge32", "edge96"])
    if scale == "small":
        w, h = rng.randint(2, 30), rng.randint(2, 30)
    elif scale == "medium":
        w, h = rng.randint(25, 95), rng.randint(25, 95)
    elif scale == "large":
        w, h = rng.randint(90, 200), rng.randint(90, 200)
    elif scale == "edge32":
        w, h = 32, 32
    else:
        w, h = 96, 96
    x = rng.randint(0, max(0, image_w - w))
    y = rng.randint(0, max(0, image_h - h))
    if rng.random() < 0.3:  # fractional coordinates too
        x += rng.random()
        y += rng.random()
        w += rng.random()
        h += rng.random()
    return [x, y, w, h]


def jitter(rng, box, amount):
    x, y, w, h = box
    if rng.random() < 0.5:
        d = lambda v: rng.randint(-amount, amount)
    else:
        d = lambda v: rng.uniform(-amount, amount)
    w2, h2 = max(1, w + d(w)), max(1, h + d(h))
    return [x + d(x), y + d(y), w2, h2]


def make_case(seed):
    rng = random.Random(seed)
    n_images = rng.randint(3, 25)
    image_ids = rng.sample(range(1, 1000), n_images)  # file order is not id order
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 300, "height": 250} for i in image_ids]
    n_categories = rng.randint(1, 5)
    category_ids = rng.sample(range(1, 100), n_categories + 1)
    categories = [{"id": c, "name": f"c{c}"} for c in category_ids[:n_categories]]
    unlisted_category = category_ids[n_categories]  # detections only; pycocotools ignores them
    no_gt_category = categories[0]["id"] if n_categories > 1 and rng.random() < 0.5 else None

    annotations = []
    next_id = 0 if rng.random() < 0.3 else 1  # id 0: pycocotools' quirk
    for image in images:
        if rng.random() < 0.15:
            continue  # an image without ground truth
        for _ in range(rng.randint(0, 12)):
            category = rng.choice(categories)["id"]
            if category == no_gt_category:
                continue
            box = random_box(rng, image["width"], image["height"])
            crowd = 1 if rng.random() < 0.1 else 0
            if crowd:
                box = [box[0], box[1], box[2] * 2, box[3] * 2]
            area_kind = rng.random()
            if area_kind < 0.5:
                area = box[2] * box[3]
            elif area_kind < 0.8:
                area = box[2] * box[3] * rng.uniform(0.4, 1.0)  # like a segmentation's area
            else:
                area = rng.choice([32 * 32, 96 * 96, 32 * 32 - 0.5, 96 * 96 + 0.5, 500.0, 5000.0])
            annotations.append({"id": next_id, "image_id": image["id"], "category_id": category,
                                "bbox": box, "area": area, "iscrowd": crowd})
            next_id += 1

    detections = []
    many_image = rng.choice(images)["id"] if rng.random() < 0.3 else None
    for image in images:
        if rng.random() < 0.1:
            continue  # an image without detections
        gts = [a for a in annotations if a["image_id"] == image["id"]]
        for gt in gts:
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
                box = list(gt["bbox"]) if rng.random() < 0.15 else jitter(rng, gt["bbox"], rng.choice([1, 3, 8, 20]))
                category = gt["category_id"] if rng.random() < 0.85 else rng.choice(categories)["id"]
                detections.append({"image_id": image["id"], "category_id": category, "bbox": box,
                                   "score": round(rng.random(), 2)})
        n_false = rng.randint(0, 6) + (rng.randint(100, 130) if image["id"] == many_image else 0)
        for _ in range(n_false):
            category = unlisted_category if rng.random() < 0.05 else rng.choice(categories)["id"]
            detections.append({"image_id": image["id"], "category_id": category,
                               "bbox": random_box(rng, image["width"], image["height"]),
                               "score": round(rng.random(), rng.choice([1, 2, 3]))})
    if not detections:  # pycocotools cannot load an empty results list
        detections.append({"image_id": images[0]["id"], "category_id": categories[0]["id"],
                           "bbox": [1, 1, 10, 10], "score": 0.5})
    rng.shuffle(detections)
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, detections


def evaluate(gt_path, dt_path):
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco_gt = COCO(gt_path)
        coco_dt = coco_gt.loadRes(dt_path)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    return [float(s) for s in evaluator.stats], summary.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the files")
    parser.add_argument("--seeds", type=int, default=20, help="number of cases")
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        gt, dt = make_case(seed)
        gt_path = os.path.join(args.out, f"gt_{seed}.json")
        dt_path = os.path.join(args.out, f"dt_{seed}.json")
        with open(gt_path, "w") as f:
            json.dump(gt, f)
        with open(dt_path, "w") as f:
            json.dump(dt, f)
        stats, summary = evaluate(gt_path, dt_path)
        names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
        with open(os.path.join(args.out, f"stats_{seed}.json"), "w") as f:
            json.dump(dict(zip(names, stats)), f)
        with open(os.path.join(args.out, f"summary_{seed}.txt"), "w") as f:
            f.write(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
