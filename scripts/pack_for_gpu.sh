#!/usr/bin/env bash
# Gathers what the CUDA test machine lacks (TOOLCHAIN.md: no Java, ANTLR
# runtime, CLI11, nlohmann_json, toml++, stb, GoogleTest there) into build-gpu-pack/
# (ignored by git), for the device `run` tool to `carry`:
#   build-gpu-pack/grammar/   the generated LossDSL parser (LOSSFORGE_GRAMMAR_SOURCES)
#   build-gpu-pack/antlr/     include/antlr4-runtime + lib/libantlr4-runtime.so* (LOSSFORGE_ANTLR_ROOT)
#   build-gpu-pack/include/   CLI/ and nlohmann/ headers
#   build-gpu-pack/stb/       stb_image.h and stb_image_write.h (LOSSFORGE_STB_INCLUDE_DIR)
#   build-gpu-pack/toml/      toml++ headers, library and CMake package
#   build-gpu-pack/gtest/     GoogleTest/GoogleMock headers and static libraries (GTEST_ROOT)
# Usage: scripts/pack_for_gpu.sh [BUILD_DIR]   (a configured build, by default scripts/setup.sh's:
#   $LOSSFORGE_BUILD_DIR or build/; its grammar/generated is built if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${LOSSFORGE_BUILD_DIR:-$root/build}}
pack=$root/build-gpu-pack
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
lib=/usr/lib/$multiarch

rm -rf "$pack"
mkdir -p "$pack"/{grammar,antlr/lib,include,toml,gtest/lib}

if [ ! -f "$build/grammar/generated/LossDSLParser.cpp" ]; then
  cmake --build "$build" --target lossforge_grammar >/dev/null
fi
cp "$build"/grammar/generated/LossDSL{Lexer,Parser}.{cpp,h} "$pack/grammar/"

cp -r /usr/include/antlr4-runtime "$pack/antlr/include-tmp"
mkdir -p "$pack/antlr/include" && mv "$pack/antlr/include-tmp" "$pack/antlr/include/antlr4-runtime"
cp -P "$lib"/libantlr4-runtime.so* "$pack/antlr/lib/"
# libantlr4-runtime needs libuuid.so.1 (present on Ubuntu; brought along in case).
cp -L "$lib/libuuid.so.1" "$pack/antlr/lib/" 2>/dev/null || true

cp -r /usr/include/CLI /usr/include/nlohmann "$pack/include/"
mkdir -p "$pack/stb" && cp /usr/include/stb/stb_image.h /usr/include/stb/stb_image_write.h "$pack/stb/"

mkdir -p "$pack/toml/include" "$pack/toml/lib/$multiarch/cmake"
cp -r /usr/include/toml++ "$pack/toml/include/"
cp -P "$lib"/libtomlplusplus.so* "$pack/toml/lib/$multiarch/"
cp -r "$lib/cmake/tomlplusplus" "$pack/toml/lib/$multiarch/cmake/"

cp -r /usr/include/gtest /usr/include/gmock "$pack/gtest/" 2>/dev/null || true
mkdir -p "$pack/gtest/include" && mv "$pack/gtest/gtest" "$pack/gtest/gmock" "$pack/gtest/include/"
cp "$lib"/libgtest.a "$lib"/libgtest_main.a "$lib"/libgmock.a "$lib"/libgmock_main.a "$pack/gtest/lib/"

du -sh "$pack"
echo "carry: build-gpu-pack"
