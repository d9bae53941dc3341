#!/usr/bin/env bash
# Installs what lossforge needs on Debian 12 (only what is missing) and builds
# it in build/ with Ninja. Safe to run again: it then only rebuilds what changed.
#
#   LOSSFORGE_BUILD_DIR=DIR  build there instead of build/
#   LOSSFORGE_JOBS=N         parallel build jobs (default: the number of cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  cmake ninja-build g++                          # the build
  antlr4 libantlr4-runtime-dev uuid-dev          # the DSL parser (generated at build time)
  libcli11-dev nlohmann-json3-dev                # the command line
  llvm-16-dev libzstd-dev                        # the LLVM ORC CPU JIT (optional at configure time)
  libgtest-dev libgmock-dev libbenchmark-dev     # tests and benchmarks
  libmuparser-dev                                # a formula-parser peer for benchmarks
  libtorch-dev                                   # LibTorch 1.13 CPU, the torch_bench peer (optional at configure time)
  clang-14 libclang-rt-14-dev                    # the libFuzzer target (ASan + UBSan)
  python3-torch python3-numpy python3-torchvision # independent references for tests
  libpng-dev libjpeg62-turbo-dev libstb-dev      # images: the detection data (PNG/JPEG)
  libcairo2-dev libreadline-dev tmux             # the REPL: PNG charts, line editing, its terminal test
  libtomlplusplus-dev                            # search configuration files
  python3-pip                                    # pycocotools, the COCOeval reference for tests
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install packages" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# pycocotools (PyPI) for the python3 first on PATH: the reference COCO evaluator in tests.
if ! python3 -c "import pycocotools.cocoeval" 2>/dev/null; then
  echo "setup: installing pycocotools from PyPI"
  python3 -m pip install --quiet pycocotools numpy 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages pycocotools numpy
fi

# Configure once; an existing build directory keeps its generator and options.
build=${LOSSFORGE_BUILD_DIR:-build}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "${LOSSFORGE_JOBS:-$(nproc)}"
