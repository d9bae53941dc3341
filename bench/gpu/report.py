#!/usr/bin/env python3
"""Merges lossforge_bench.json and torch_bench.json into one Markdown table."""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return e


if len(sys.argv) < 2:
    sys.exit("usage: report.py LOSSFORGE_BENCH.json [TORCH_BENCH.json]")
lf = load(sys.argv[1])
if isinstance(lf, Exception):
    sys.exit(f"report.py: cannot read {sys.argv[1]} (did lossforge_gpu_bench fail? see its .log): {lf}")
th = load(sys.argv[2]) if len(sys.argv) > 2 else {"workloads": []}
if isinstance(th, Exception):  # a table of lossforge's own numbers is still worth having
    print(f"report.py: no PyTorch columns, cannot read {sys.argv[2]}: {th}", file=sys.stderr)
    th = {"workloads": []}
torch_by = {w["name"]: w for w in th.get("workloads", [])}
bw = th.get("copy_bandwidth_Bps")
lines = [f"GPU: {lf.get('device')} (sm_{lf.get('arch')}), torch {th.get('torch', '?')}, "
         f"copy bandwidth {bw / 1e12:.2f} TB/s" if bw else f"GPU: {lf.get('device')}", "",
         "| workload | lossforge ms | % of floor | eager ms | torch.compile ms (first call s) | floor ms (lossforge bytes) | x vs compile | x vs eager | 6 / 8 blocks per SM ms | compile ms (NVRTC alone) | cached load ms |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for w in lf["workloads"]:
    t = torch_by.get(w["name"], {})
    floor = w["bytes"] / bw * 1e3 if bw else None
    comp = t.get("compiled_ms")
    occupancy = (f"{w['kernel_ms_min6']:.4f} / {w['kernel_ms_min8']:.4f}" if "kernel_ms_min6" in w else "?")
    lines.append("| {} | {:.4f} | {} | {} | {} | {} | {} | {} | {} | {:.1f} ({}) | {:.3f} |".format(
        w["name"], w["kernel_ms"],
        f"{100 * floor / w['kernel_ms']:.0f}%" if floor else "?",
        f"{t['eager_ms']:.3f}" if "eager_ms" in t else "?",
        f"{comp:.3f} ({t.get('compile_first_call_s', 0):.1f})" if comp else t.get("compile_error", "?"),
        f"{floor:.4f}" if floor else "?",
        f"{comp / w['kernel_ms']:.1f}x" if comp else "?",
        f"{t['eager_ms'] / w['kernel_ms']:.1f}x" if "eager_ms" in t else "?",
        occupancy, w["compile_ms"], f"{w['nvrtc_ms']:.1f}" if "nvrtc_ms" in w else "?", w["cached_load_ms"]))
lines += ["", "| preset | candidates | median warm compile ms (front end) | max ms | median NVRTC on the same text again ms |",
          "|---|---|---|---|---|"]
for c in lf.get("candidates", []):
    front = f" ({c['median_front_end_ms']:.2f})" if "median_front_end_ms" in c else ""
    again = f"{c['median_nvrtc_again_ms']:.1f}" if "median_nvrtc_again_ms" in c else "?"
    lines.append(f"| {c['preset']} | {c['count']} | {c['median_compile_ms']:.1f}{front} | {c['max_compile_ms']:.1f} | {again} |")
print("\n".join(lines))
