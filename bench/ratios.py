#!/usr/bin/env python3
"""The tables of bench/README.md from torch_bench (or llvm_bench) runs.

    build-torch/bench/torch_bench --benchmark_repetitions=5 \
        --benchmark_out=bench.json --benchmark_out_format=json
    python3 bench/ratios.py bench.json [more.json ...]

Throughput: the fastest repetition of each row over all the runs given, per
element (per box pair, per row of classes). On the shared development
machine, interference only ever slows a run down, at times for a whole
process (1.5x, bench/README.md "Two speeds of one kernel", the stack's
alignment until session 7 realigned it), so the minimum
over repetitions and runs is the estimate least disturbed by it; every row
is treated alike. Ratios are time / time of the kernel named in the header.
Compile latency: the medians of the last run given.
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
    print("evaluate = llvm/1t, the JIT kernel through CompiledLoss::evaluate (fresh result arrays per")
    print("call); into = llvm_into/1t, the same kernel on buffers allocated once; kernel = the faster")
    print("of the two (before session 7's stack realignment a process could run one of them 1.5x slow")
    print("throughout, bench/README.md). The JIT compiles the loss simplified, as every user path does;")
    print("interp runs it as written (as `eval --backend interp`), interp simpl. the simplified formula:\n")
    print("| workload | interp | interp simpl. | evaluate | into | llvm 2t | torch 1t | torch 2t | cpp | floor "
          "| interp / kernel | interp simpl. / kernel | torch / kernel | cpp / kernel | kernel / floor |")
    print("|---" * 15 + "|")
    for w in WORKLOADS:
        get = lambda row: best.get((row, w), float("inf"))
        interp, evaluate, into, llvm2 = get("interp"), get("llvm/1t"), get("llvm_into/1t"), get("llvm/2t")
        interp_simplified = get("interp_simplified")
        kernel = min(evaluate, into)
        torch1, torch2, cpp, floor = get("torch/1t"), get("torch/2t"), get("cpp"), get("floor/1t")
        torch_text, torch_ratio = ns(torch1), ratio(torch1, kernel)
        onehot = get("torch/1t one-hot")
        if onehot != float("inf"):
            torch_text += f" / {ns(onehot)} one-hot"
            torch_ratio += f" / {ratio(onehot, kernel)}"
        cpp_text, cpp_ratio = ns(cpp), ratio(cpp, kernel)
        # cross-entropy hand-written with AVX2 intrinsics, in three row schedules
        for row, label in (("cpp_avx2", "avx2"), ("cpp_avx2_deferred_log", "deferred log"),
                           ("cpp_avx2_row_blocks", "row blocks")):
            time = get(row)
            if time != float("inf"):
                cpp_text += f" / {ns(time)} {label}"
                cpp_ratio += f" / {ratio(time, kernel)}"
        print(f"| {w} | {ns(interp)} | {ns(interp_simplified)} | {ns(evaluate)} | {ns(into)} | {ns(llvm2)} "
              f"| {torch_text} | {ns(torch2)} | {cpp_text} | {ns(floor)} | {ratio(interp, kernel)} "
              f"| {ratio(interp_simplified, kernel)} | {torch_ratio} | {cpp_ratio} | {ratio(kernel, floor)} |")


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
    if len(sys.argv) < 2:
        sys.exit("usage: ratios.py BENCH.json [MORE.json ...] (Google Benchmark JSON of torch_bench or llvm_bench)")
    runs = []
    for path in sys.argv[1:]:
        try:
            with open(path) as f:
                runs.append(json.load(f)["benchmarks"])
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"ratios.py: cannot read {path}: {e}")
    throughput_table(fastest([b for run in runs for b in run]))
    compile_table(runs[-1])


if __name__ == "__main__":
    main()
