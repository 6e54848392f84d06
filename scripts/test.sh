#!/usr/bin/env bash
# Builds and runs the whole test suite: the normal build first, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer.
#   ./scripts/test.sh            all tests, both builds
#   GRIDTRUST_SKIP_SANITIZE=1    only the normal build
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
# Node interop suite (ctest label interop): its packages, from the committed lockfile,
# only when missing so that a prepared machine runs offline.
if command -v npm >/dev/null && [ ! -d tests/interop/node_modules ]; then
  npm ci --prefix tests/interop --no-audit --no-fund
fi
(cd build && ctest --output-on-failure -j "$jobs" -LE soak)
if [ "${GRIDTRUST_SKIP_SANITIZE:-0}" != "1" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGRIDTRUST_SANITIZE=ON -DGRIDTRUST_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  (cd build-asan && ctest --output-on-failure -j "$jobs" -LE soak)
fi
