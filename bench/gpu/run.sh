#!/usr/bin/env bash
# One run on the CUDA machine (TOOLCHAIN.md: Ubuntu 24.04, g++ 13, cmake 4,
# CUDA 13, PyTorch 2.11 with its LibTorch; no LLVM, ANTLR, CLI11, Java):
#   1. builds lossforge with LOSSFORGE_WITH_LLVM=OFF against the dependencies
#      scripts/pack_for_gpu.sh gathered into build-gpu-pack/ (carried along);
#   2. runs the GPU tests (CUDA vs the interpreter, f32 and f64, reductions,
#      cache); with --full also the CPU-only ones (generated C++, NVRTC on
#      1,000 candidates per preset), which CI already runs;
#   3. runs the LibTorch op on CUDA tensors against the CPU op (loss_op_test's
#      LossOpCuda, RoIAlign's CUDA test) and every detector's losses and
#      gradients on the GPU against the CPU, when LibTorch was built with CUDA;
#   4. benchmarks the SPEC §7 workloads: lossforge kernel vs PyTorch eager vs
#      torch.compile vs the bandwidth floor, warm NVRTC compile per candidate,
#      cached load; `lossforge bench` on the CUDA back end;
#   5. trains FCOS-tiny on the synthetic data on the GPU (issue 6's acceptance
#      run: 1000 images at 96 px, 6 epochs, focal + GIoU) and 2 epochs of the
#      same on the CPU, for images/s; writes everything to $OUT (default
#      ./gpu-results).
# Each stage logs to $OUT and a failing stage does not stop the later ones;
# the exit status is that of the first failure.
#   bench/gpu/run.sh [--quick|--full]    (--quick: 1/10 sizes, fewer candidates)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/gpu-results}
pack=$root/build-gpu-pack
build=$root/build-gpu
quick=${1:-}
mkdir -p "$out"
status=0
step() {  # step NAME COMMAND...: runs it, logs to $out/NAME.log, remembers the first failure
  local name=$1; shift
  local start=$SECONDS
  echo "== $name: $*" | tee -a "$out/summary.txt"
  if "$@" >"$out/$name.log" 2>&1; then
    echo "   ok ($((SECONDS - start)) s)" | tee -a "$out/summary.txt"
  else
    local rc=$?
    echo "   FAILED with $rc ($((SECONDS - start)) s); tail of $name.log:" | tee -a "$out/summary.txt"
    tail -n 30 "$out/$name.log" | tee -a "$out/summary.txt"
    [ $status -eq 0 ] && status=$rc
  fi
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; g++ --version | head -1; cmake --version | head -1;
  /usr/local/cuda/bin/nvcc --version | tail -2; python3 -c "import torch; print('torch', torch.__version__)"; } \
  >"$out/machine.txt" 2>&1

if [ ! -d "$pack" ]; then
  echo "build-gpu-pack/ is missing: run scripts/pack_for_gpu.sh where the Debian packages are, and carry it" | tee -a "$out/summary.txt"
  exit 1
fi
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
    -DCMAKE_PREFIX_PATH="$torch_prefix" -DCUDAToolkit_ROOT=/usr/local/cuda
}
targets="lossforge cuda_engine_test lossforge_gpu_bench"
[ "$quick" = "--full" ] && targets="$targets nvrtc_test cpp_codegen_test"
torch_targets="loss_op_test roi_align_test detector_cuda_test lossforge-train"
step configure configure "$build" ON
step build cmake --build "$build" -j"$(nproc)" --target $targets
# Apart, so that a LibTorch problem cannot cost the CUDA back end's tests and benchmarks.
step build_torch_parts cmake --build "$build" -j"$(nproc)" --target $torch_targets
if [ ! -x "$build/tests/cuda_engine_test" ]; then
  # The LibTorch parts are another component's: without them the CUDA back end still builds.
  build=$root/build-gpu-notorch
  step configure_without_torch configure "$build" OFF
  step build_without_torch cmake --build "$build" -j"$(nproc)" --target $targets
fi

export LOSSFORGE_CACHE_DIR="$build/kernel-cache"
step gpu_tests "$build/tests/cuda_engine_test" --gtest_output=json:"$out/cuda_engine_test.json"
if [ "$quick" = "--full" ]; then  # these need no GPU (CI runs them); only on request, device time is scarce
  step cpp_codegen_tests "$build/tests/cpp_codegen_test"
  step nvrtc_tests env LOSSFORGE_NVRTC_CANDIDATES=1000 "$build/tests/nvrtc_test"
fi
if [ -x "$build/tests/loss_op_test" ]; then
  step torch_op_cuda "$build/tests/loss_op_test" --gtest_filter='LossOpCuda.*' --gtest_output=json:"$out/loss_op_test.json"
  step roi_align_cuda "$build/tests/roi_align_test" --gtest_filter='*Cuda*'
  step detectors_cuda "$build/tests/detector_cuda_test" --gtest_output=json:"$out/detector_cuda_test.json"
fi
step cli_eval_cuda bash -c "echo '{\"x\": [0.5, -2], \"y\": [1, 0]}' > '$out/in.json' && \
  '$build/cli/lossforge' eval '$root/examples/losses/focal.loss' --inputs '$out/in.json' --backend cuda --grad --json && \
  '$build/cli/lossforge' eval '$root/examples/losses/focal.loss' --inputs '$out/in.json' --backend interp --grad --json && \
  '$build/cli/lossforge' eval '$root/examples/losses/focal.loss' --inputs '$out/in.json' --backend cuda --grad --dtype bf16 --json && \
  '$build/cli/lossforge' eval '$root/examples/losses/focal.loss' --inputs '$out/in.json' --backend interp --grad --dtype bf16 --json"
# `lossforge bench` as a user runs it: the CUDA row next to the interpreter's.
step cli_bench_cuda bash -c "'$build/cli/lossforge' bench '$root/examples/losses/cross_entropy.loss' --rows 200000 \
    --width 81 --min-time 0.2 --json > '$out/cli_bench_cross_entropy.json' && \
  '$build/cli/lossforge' bench '$root/examples/losses/focal.loss' --rows 25600000 --backend cuda --dtype bf16 \
    --min-time 0.2 --json > '$out/cli_bench_focal_bf16.json'"

size_flag=""; [ "$quick" = "--quick" ] && size_flag=--quick
step lossforge_bench bash -c "'$build/bench/gpu/lossforge_gpu_bench' $size_flag > '$out/lossforge_bench.json'"
# The same with NVRTC's fast-compile mode, to weigh compile time against kernel time.
step lossforge_bench_fast_compile bash -c "LOSSFORGE_NVRTC_OPTIONS=--Ofast-compile=min '$build/bench/gpu/lossforge_gpu_bench' $size_flag > '$out/lossforge_bench_fast_compile.json'"
step torch_bench bash -c "python3 '$root/bench/gpu/torch_bench.py' $size_flag > '$out/torch_bench.json'"
step report bash -c "python3 '$root/bench/gpu/report.py' '$out/lossforge_bench.json' '$out/torch_bench.json' > '$out/results.md' &&
  { echo; echo 'With LOSSFORGE_NVRTC_OPTIONS=--Ofast-compile=min:'; python3 '$root/bench/gpu/report.py' '$out/lossforge_bench_fast_compile.json' '$out/torch_bench.json'; } >> '$out/results.md'"
if [ -x "$build/cli/lossforge-train" ]; then
  data=$build/synth
  rm -rf "$data" "$build/run_cuda" "$build/run_cpu"  # a warm machine keeps the build tree
  train="'$build/cli/lossforge' train --data '$data' --fpn-channels 32 --image-size 96 --seed 0 --workers 4 --quiet"
  step train_data "$build/cli/lossforge" data synth --out "$data" --train 1000 --val 200 --seed 0
  step train_cuda bash -c "$train --device cuda --epochs 6 --out '$build/run_cuda' && cp '$build/run_cuda/metrics.json' '$out/train_cuda.json'"
  step train_cpu bash -c "$train --device cpu --epochs 2 --threads $(nproc) --out '$build/run_cpu' && cp '$build/run_cpu/metrics.json' '$out/train_cpu.json'"
  for device in cuda cpu; do
    [ -f "$out/train_$device.json" ] && python3 -c "import json, sys; m = json.load(open(sys.argv[1]))
print(f'train {sys.argv[2]}: {m[\"images_per_s\"]:.1f} images/s, AP {m[\"AP\"]:.3f}, AP50 {m[\"AP50\"]:.3f}, {m[\"epochs\"]} epochs, {m[\"seconds\"]:.0f} s')" \
      "$out/train_$device.json" "$device" | tee -a "$out/summary.txt"
  done
fi
[ -f "$out/results.md" ] && cat "$out/results.md"
exit $status
