#!/usr/bin/env bash
# Builds lossforge (see setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
ctest --test-dir "${LOSSFORGE_BUILD_DIR:-build}" --output-on-failure -j2
