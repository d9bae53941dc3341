#!/usr/bin/env python3
"""The tables of bench/README.md from one torch_bench (or llvm_bench) run.

    build-torch/bench/torch_bench --benchmark_repetitions=5 \
        --benchmark_out=bench.json --benchmark_out_format=json
    python3 bench/ratios.py bench.json

Throughput: the fastest repetition of each row, per element (per box pair,
per row of classes). On a shared machine, other tenants only ever slow a
run down, so the minimum is the estimate least disturbed by them; every row
of one workload is treated alike. Ratios are time / time of the kernel named
in the header. Compile latency: the medians the benchmark reports.
"""
import json
import sys
from collections import defaultdict

WORKLOADS = ["focal", "cse_autoloss_b_cls", "ce_c81", "cse_autoloss_a_cls_c81", "giou", "cse_autoloss_b_reg"]
UNITS = {"ce_c81": "sec/element", "cse_autoloss_a_cls_c81": "sec/element"}  # per element of the 81 columns


def seconds_per_unit(benchmark, workload):
    counter = UNITS.get(workload)
    if counter is None:
        counter = next(k for k in ("sec/element", "sec/pair", "sec/row") if k in benchmark)
    return benchmark[counter]


def row_and_workload(run_name):
    """"llvm/1t/focal/real_time" -> ("llvm/1t", "focal"); None for other rows."""
    parts = [p for p in run_name.split("/") if p != "real_time" and not p.startswith("min_time:")]
    if len(parts) < 2 or parts[0] == "compile":
        return None
    row, workload = "/".join(parts[:-1]), parts[-1]
    if workload == "ce_c81_onehot":
        row, workload = row + " one-hot", "ce_c81"
    return (row, workload) if workload in WORKLOADS else None


def fastest(benchmarks):
    """(row, workload) -> the fastest repetition's seconds per unit."""
    best = defaultdict(lambda: float("inf"))
    for b in benchmarks:
        key = row_and_workload(b["run_name"])
        if key and b.get("run_type") == "iteration":
            best[key] = min(best[key], seconds_per_unit(b, key[1]))
    return best


def ns(value):
    return "" if value == float("inf") else f"{value * 1e9:.3g}"


def ratio(a, b):
    return "" if float("inf") in (a, b) else f"{a / b:.1f}x"


def throughput_table(best):
    print("Loss + gradient, float32, ns per element (per pair for box losses), fastest repetition.")
    print("kernel = llvm_into/1t, the JIT kernel on buffers allocated once; evaluate = llvm/1t, the")
    print("same kernel through CompiledLoss::evaluate, which allocates fresh result arrays per call:\n")
    print("| workload | interp | evaluate | kernel | llvm 2t | torch 1t | torch 2t | cpp | floor "
          "| interp / kernel | torch / kernel | cpp / kernel | kernel / floor |")
    print("|---" * 13 + "|")
    for w in WORKLOADS:
        get = lambda row: best.get((row, w), float("inf"))
        interp, evaluate, kernel, llvm2 = get("interp"), get("llvm/1t"), get("llvm_into/1t"), get("llvm/2t")
        torch1, torch2, cpp, floor = get("torch/1t"), get("torch/2t"), get("cpp"), get("floor/1t")
        torch_text, torch_ratio = ns(torch1), ratio(torch1, kernel)
        onehot = get("torch/1t one-hot")
        if onehot != float("inf"):
            torch_text += f" / {ns(onehot)} one-hot"
            torch_ratio += f" / {ratio(onehot, kernel)}"
        print(f"| {w} | {ns(interp)} | {ns(evaluate)} | {ns(kernel)} | {ns(llvm2)} | {torch_text} | {ns(torch2)} "
              f"| {ns(cpp)} | {ns(floor)} | {ratio(interp, kernel)} | {torch_ratio} | {ratio(cpp, kernel)} "
              f"| {ratio(kernel, floor)} |")


def compile_table(benchmarks):
    """The median of each compile row: its median aggregate when it was repeated."""
    rows = {}
    for b in benchmarks:
        name = b["run_name"]
        if not name.startswith("compile/"):
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                rows[name] = b
        elif name not in rows:
            rows[name] = b
    print("\nCompile, text to callable (ms), median:\n")
    print("| row | median | p90 |")
    print("|---|---|---|")
    for name, b in rows.items():
        p90 = b.get("p90_ms")
        label = name.split("/iterations")[0].split("/repeats")[0]
        print(f"| {label} | {b['real_time']:.3g} | {'' if p90 is None else f'{p90:.3g}'} |")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ratios.py BENCH.json (Google Benchmark JSON output of torch_bench or llvm_bench)")
    try:
        with open(sys.argv[1]) as f:
            benchmarks = json.load(f)["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"ratios.py: cannot read {sys.argv[1]}: {e}")
    throughput_table(fastest(benchmarks))
    compile_table(benchmarks)


if __name__ == "__main__":
    main()
