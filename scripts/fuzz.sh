#!/usr/bin/env bash
# Open-ended fuzzing with libFuzzer (fuzz/README.md). Not part of the test suite: ctest
# runs each target's seeds and fixed mutations (label fuzz) on every build.
#   ./scripts/fuzz.sh [SECONDS [TARGET...]]   default: 300 s each, every target
# Needs clang (Debian: clang, libclang-rt-dev). Builds in build-fuzz/ with libFuzzer,
# ASan and UBSan; each target's corpus grows in build-fuzz/corpus/TARGET (seeded from
# fuzz/corpus/TARGET); a crash leaves its input in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json_text signed_command setpoint fleet_target fleet ocpp_certificates csr)
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt-get install clang libclang-rt-dev)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRIDTRUST_FUZZ=ON \
  -DGRIDTRUST_TESTS=OFF -DGRIDTRUST_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "== fuzz_$t for ${seconds} s"
  dict=(-dict=fuzz/json.dict)
  case "$t" in signed_command | csr) dict=() ;; esac  # (an edit script; DER)
  build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 "${dict[@]}" \
    -artifact_prefix=build-fuzz/artifacts/"$t"- "build-fuzz/corpus/$t" "fuzz/corpus/$t"
done
