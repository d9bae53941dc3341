#!/usr/bin/python3
"""Independent reference for detectors/train/roi_align.cpp: torchvision's roi_align.

tests/detectors/roi_align_test.cpp writes the inputs of one case to a JSON
file, runs this script on it, and compares lossforge's RoIAlign (ATen ops)
with what torchvision.ops.roi_align (aligned=True) computes in the same dtype:
the pooled values and the gradient with respect to the features for a given
gradient of the output.

Input  {"dtype": "f32"|"f64", "shape": [B, C, H, W], "features": [...],
        "rois": [[b, x1, y1, x2, y2], ...], "spatial_scale": s,
        "output_size": n, "sampling_ratio": k, "grad_output": [...]}
Output {"output": [...], "grad_features": [...]}  (flat, row-major)

Usage: roi_align_reference.py IN.json OUT.json
"""
import json
import sys

import torch
import torchvision


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: roi_align_reference.py IN.json OUT.json")
    with open(sys.argv[1]) as f:
        case = json.load(f)
    dtype = torch.float64 if case["dtype"] == "f64" else torch.float32
    features = torch.tensor(case["features"], dtype=dtype).view(case["shape"]).requires_grad_(True)
    rois = torch.tensor(case["rois"], dtype=dtype).view(-1, 5)
    n = case["output_size"]
    out = torchvision.ops.roi_align(features, rois, (n, n), spatial_scale=case["spatial_scale"],
                                    sampling_ratio=case["sampling_ratio"], aligned=True)
    grad_output = torch.tensor(case["grad_output"], dtype=dtype).view(out.shape)
    out.backward(grad_output)
    with open(sys.argv[2], "w") as f:
        json.dump({"output": out.detach().reshape(-1).tolist(),
                   "grad_features": features.grad.reshape(-1).tolist(),
                   "torchvision": torchvision.__version__}, f)


if __name__ == "__main__":
    main()
