#!/usr/bin/env bash
# One run on the CUDA machine (TOOLCHAIN.md: Ubuntu 24.04, g++ 13, cmake 4,
# CUDA 13, PyTorch 2.11 with its LibTorch; no LLVM, ANTLR, CLI11, Java):
#   1. builds lossforge with LOSSFORGE_WITH_LLVM=OFF against the dependencies
#      scripts/pack_for_gpu.sh gathered into build-gpu-pack/ (carried along),
#      while PyTorch compiles its side of the benchmark (torch.compile's first
#      calls are CPU work too);
#   2. runs the GPU tests (CUDA vs the interpreter, f32, f64, f16, bf16,
#      reductions, cache); with --full also the CPU-only ones (generated C++,
#      NVRTC on 1,000 candidates per preset), which CI already runs;
#   3. benchmarks the SPEC §7 workloads: lossforge kernel vs PyTorch eager vs
#      torch.compile vs the bandwidth floor, warm NVRTC compile per candidate,
#      cached load, each timed on a quiet machine (nothing else running);
#   4. runs the LibTorch op on CUDA tensors against the CPU op (loss_op_test's
#      LossOpCuda, RoIAlign's CUDA test) and every detector's losses and
#      gradients on the GPU against the CPU, when LibTorch was built with CUDA;
#   5. trains FCOS-tiny on the synthetic data on the GPU (issue 6's acceptance
#      run: 1000 images at 96 px, 6 epochs, focal + GIoU) and 2 epochs of the
#      same on the CPU, for images/s;
#   6. runs compute-sanitizer's memcheck and racecheck over the CUDA kernels.
# (NVRTC's --Ofast-compile was measured in session 12: compiles no faster, kernels
# 10-30% slower; LOSSFORGE_NVRTC_OPTIONS still passes such options through.)
# Steps run in that order under one time budget (LOSSFORGE_GPU_BUDGET_S,
# default 540 s): a step that no longer fits is skipped, a failing step does
# not stop the later ones, and the exit status is that of the first failure.
# $OUT (default ./gpu-results) receives summary.txt, results.md and logs.tgz
# (every log and JSON), the last refreshed after each step so that a run cut
# short still leaves what it did. LOSSFORGE_GPU_BUILD_DIR builds elsewhere than
# build-gpu/ (an existing build tree is reused).
#   bench/gpu/run.sh [--quick|--full]    (--quick: 1/10 sizes, fewer candidates)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/gpu-results}
logs=$root/gpu-logs
pack=$root/build-gpu-pack
build=${LOSSFORGE_GPU_BUILD_DIR:-$root/build-gpu}
budget=${LOSSFORGE_GPU_BUDGET_S:-540}
mode=${1:-}
mkdir -p "$out"
rm -rf "$logs" && mkdir -p "$logs"
status=0

save_logs() {  # logs.tgz, replaced atomically
  tar czf "$out/.logs.tgz" -C "$logs" . 2>/dev/null && mv "$out/.logs.tgz" "$out/logs.tgz"
}
note() { echo "$*" | tee -a "$out/summary.txt"; }
fail() { [ $status -eq 0 ] && status=$1; }

step() {  # step NAME SECONDS_NEEDED COMMAND...: runs it under the budget, logs to $logs/NAME.log
  local name=$1 needed=$2; shift 2
  local left=$((budget - SECONDS))
  if [ $left -lt "$needed" ]; then
    note "== $name: skipped, ${left} s of the budget left (needs about ${needed} s)"
    return 0
  fi
  local start=$SECONDS
  note "== $name: $*"
  timeout --kill-after=5 "$left" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then
    note "   ok ($((SECONDS - start)) s)"
  else
    note "   FAILED with $rc ($((SECONDS - start)) s)$([ $rc -eq 124 ] && echo ', out of time'); tail of $name.log:"
    tail -n 30 "$logs/$name.log" | tee -a "$out/summary.txt"
    fail $rc
  fi
  save_logs
}

tally() {  # tally GTEST_JSON: how many ran, were skipped (a GPU test skips without a device) and failed
  [ -f "$1" ] && python3 - "$1" <<'EOF' | tee -a "$out/summary.txt"
import json, sys
tests = [t for suite in json.load(open(sys.argv[1]))["testsuites"] for t in suite["testsuite"]]
name = lambda t: f"{t['classname']}.{t['name']}"
skipped = [name(t) for t in tests if t.get("result") == "SKIPPED"]
failed = [name(t) for t in tests if t.get("failures")]
print(f"   {len(tests)} tests: {len(tests) - len(skipped) - len(failed)} passed, {len(skipped)} skipped"
      f"{' (' + ', '.join(skipped[:5]) + ')' if skipped else ''}, {len(failed)} failed{' ' + str(failed[:5]) if failed else ''}")
EOF
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; g++ --version | head -1
  cmake --version | head -1; /usr/local/cuda/bin/nvcc --version | tail -2; nproc
  python3 -c "import torch; print('torch', torch.__version__)"; } >"$logs/machine.txt" 2>&1
cat "$logs/machine.txt" >>"$out/summary.txt"

if [ ! -d "$pack" ]; then
  note "build-gpu-pack/ is missing: run scripts/pack_for_gpu.sh where the Debian packages are, and carry it"
  exit 1
fi

size_flag=""; [ "$mode" = "--quick" ] && size_flag=--quick
# PyTorch's side starts now: it compiles while we build, then waits for the go file.
go_file=$logs/.torch_go
timeout --kill-after=5 "$budget" python3 "$root/bench/gpu/torch_bench.py" $size_flag --go-file "$go_file" \
  >"$logs/torch_bench.json" 2>"$logs/torch_bench_python.log" &
torch_pid=$!

torch_prefix=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)" 2>/dev/null || echo "")
# TorchConfig.cmake looks for libtorch and libc10 on the prefix path before its
# own lib/: naming torch/ (two levels up) makes it take that LibTorch's even
# where another one (Debian's) is installed system-wide.
[ -n "$torch_prefix" ] && torch_prefix="$torch_prefix;$(cd "$torch_prefix/../.." && pwd)"
multiarch=x86_64-linux-gnu
export LD_LIBRARY_PATH="$pack/antlr/lib:$pack/toml/lib/$multiarch:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# Else TorchConfig.cmake try_runs a CUDA program to list the GPUs (an H200 is 9.0).
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

configure() {  # configure BUILD_DIR TORCH(ON|OFF)
  cmake -S "$root" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLOSSFORGE_WITH_LLVM=OFF -DLOSSFORGE_WITH_CUDA=ON -DLOSSFORGE_WITH_TORCH="$2" \
    -DLOSSFORGE_BUILD_FUZZ=OFF -DLOSSFORGE_BUILD_BENCH=OFF \
    -DLOSSFORGE_GRAMMAR_SOURCES="$pack/grammar" -DLOSSFORGE_ANTLR_ROOT="$pack/antlr" \
    -DCLI11_INCLUDE_DIR="$pack/include" -DNLOHMANN_INCLUDE_DIR="$pack/include" -DLOSSFORGE_STB_INCLUDE_DIR="$pack/stb" \
    -Dtomlplusplus_DIR="$pack/toml/lib/$multiarch/cmake/tomlplusplus" -DGTEST_ROOT="$pack/gtest" \
    -DCMAKE_PREFIX_PATH="$torch_prefix" -DCUDAToolkit_ROOT=/usr/local/cuda \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5  # cmake 4 there: dependencies that still ask for an old minimum
}
export -f configure  # for step's `timeout bash -c`
export root pack multiarch torch_prefix
targets="lossforge cuda_engine_test lossforge_gpu_bench"
[ "$mode" = "--full" ] && targets="$targets nvrtc_test cpp_codegen_test"
torch_targets="loss_op_test roi_align_test detector_cuda_test lossforge-train"
step configure 60 bash -c 'configure "$@"' configure "$build" ON
# One build; -k 0 so that a LibTorch problem cannot cost the CUDA back end's tests and benchmarks.
step build 60 cmake --build "$build" -j"$(nproc)" -- -k 0 $targets $torch_targets
if [ ! -x "$build/tests/cuda_engine_test" ]; then
  # The LibTorch parts are another component's: without them the CUDA back end still builds.
  build=$root/build-gpu-notorch
  step configure_without_torch 60 bash -c 'configure "$@"' configure "$build" OFF
  step build_without_torch 60 cmake --build "$build" -j"$(nproc)" --target $targets
fi
export LOSSFORGE_CACHE_DIR="$build/kernel-cache"

step gpu_tests 30 "$build/tests/cuda_engine_test" --gtest_output=json:"$logs/cuda_engine_test.json"
tally "$logs/cuda_engine_test.json"
if [ "$mode" = "--full" ]; then  # these need no GPU (CI runs them); only on request, device time is scarce
  step cpp_codegen_tests 60 "$build/tests/cpp_codegen_test"
  step nvrtc_tests 60 env LOSSFORGE_NVRTC_CANDIDATES=1000 "$build/tests/nvrtc_test"
fi

# Timings, one program at a time: PyTorch's (already compiled), then ours.
touch "$go_file"
step torch_bench 30 bash -c "while kill -0 $torch_pid 2>/dev/null; do sleep 0.5; done
  grep -q workloads '$logs/torch_bench.json' || { tail -n 20 '$logs/torch_bench_python.log'; exit 1; }"
step lossforge_bench 40 bash -c "'$build/bench/gpu/lossforge_gpu_bench' $size_flag > '$logs/lossforge_bench.json'"
step report 5 bash -c "python3 '$root/bench/gpu/report.py' '$logs/lossforge_bench.json' '$logs/torch_bench.json' > '$out/results.md'"

if [ -x "$build/tests/loss_op_test" ]; then
  step torch_op_cuda 20 "$build/tests/loss_op_test" --gtest_filter='LossOpCuda.*' --gtest_output=json:"$logs/loss_op_test.json"
  tally "$logs/loss_op_test.json"
  step roi_align_cuda 10 "$build/tests/roi_align_test" --gtest_filter='*Cuda*'
  step detectors_cuda 30 "$build/tests/detector_cuda_test" --gtest_output=json:"$logs/detector_cuda_test.json"
  tally "$logs/detector_cuda_test.json"
fi
step cli_eval_cuda 10 bash -c "echo '{\"x\": [0.5, -2], \"y\": [1, 0]}' > '$logs/in.json' && \
  for dtype in f32 bf16; do for backend in cuda interp; do \
    '$build/cli/lossforge' eval '$root/examples/losses/focal.loss' --inputs '$logs/in.json' --backend \$backend --grad --dtype \$dtype --json \
      || exit 1; done; done"
# `lossforge bench` as a user runs it: the CUDA row next to the interpreter's.
step cli_bench_cuda 20 bash -c "'$build/cli/lossforge' bench '$root/examples/losses/cross_entropy.loss' --rows 200000 \
    --width 81 --min-time 0.2 --json > '$logs/cli_bench_cross_entropy.json' && \
  '$build/cli/lossforge' bench '$root/examples/losses/focal.loss' --rows 25600000 --backend cuda --dtype bf16 \
    --min-time 0.2 --json > '$logs/cli_bench_focal_bf16.json'"

if [ -x "$build/cli/lossforge-train" ]; then
  data=$build/synth
  rm -rf "$data" "$build/run_cuda" "$build/run_cpu"  # a warm machine keeps the build tree
  train="'$build/cli/lossforge' train --data '$data' --fpn-channels 32 --image-size 96 --seed 0 --workers 4 --quiet"
  step train_data 10 "$build/cli/lossforge" data synth --out "$data" --train 1000 --val 200 --seed 0
  step train_cuda 60 bash -c "$train --device cuda --epochs 6 --out '$build/run_cuda' && cp '$build/run_cuda/metrics.json' '$logs/train_cuda.json'"
  step train_cpu 30 bash -c "$train --device cpu --epochs 2 --threads $(nproc) --out '$build/run_cpu' && cp '$build/run_cpu/metrics.json' '$logs/train_cpu.json'"
  for device in cuda cpu; do
    [ -f "$logs/train_$device.json" ] && python3 -c "import json, sys; m = json.load(open(sys.argv[1]))
print(f'train {sys.argv[2]}: {m[\"images_per_s\"]:.1f} images/s, AP {m[\"AP\"]:.3f}, AP50 {m[\"AP50\"]:.3f}, {m[\"epochs\"]} epochs, {m[\"seconds\"]:.0f} s')" \
      "$logs/train_$device.json" "$device" | tee -a "$out/summary.txt"
  done
fi

# The kernels under compute-sanitizer: out-of-bounds and misaligned accesses,
# then shared-memory races (the block-per-row sums) on the layouts and reductions.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)
[ -z "$sanitizer" ] && note "== compute-sanitizer not found: no memcheck or racecheck"
[ -n "$sanitizer" ] && step memcheck 40 "$sanitizer" --tool memcheck --error-exitcode 3 "$build/tests/cuda_engine_test" \
  --gtest_filter='CudaExamples.LossAndGradientFloat:CudaSixteenBit.*:CudaLayouts.*:CudaReductions.*'
[ -n "$sanitizer" ] && step racecheck 40 "$sanitizer" --tool racecheck --error-exitcode 3 "$build/tests/cuda_engine_test" \
  --gtest_filter='CudaLayouts.*:CudaReductions.*Float'
note "== done in $SECONDS s, exit status $status"
save_logs
[ -f "$out/results.md" ] && cat "$out/results.md"
exit $status
