#!/usr/bin/env bash
# The test command: configure, build, and run every test with ctest.
#   scripts/test.sh              (build dir: build/)
# Environment: IMP_BUILD_DIR (default build), IMP_WERROR=ON (warnings are errors; CI sets it),
# IMP_SANITIZE=ON (ASAN+UBSAN build), IMP_CUDA=AUTO|ON|OFF, IMP_CUDA_ARCHS (default 90a),
# IMP_FUZZ_SECONDS (bounded libFuzzer run of the GGUF reader; default 20; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${IMP_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)

export PATH="$PATH:/usr/local/cuda/bin"
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
      -DIMP_WERROR="${IMP_WERROR:-OFF}"
      -DIMP_SANITIZE="${IMP_SANITIZE:-OFF}"
      -DIMP_CUDA="${IMP_CUDA:-AUTO}"
      -DCMAKE_CUDA_ARCHITECTURES="${IMP_CUDA_ARCHS:-90a}")
[ -x .venv/bin/python ] && args+=(-DPython3_EXECUTABLE="$root/.venv/bin/python")

# The libFuzzer targets need clang; they get their own build dir and the main build's ctest runs
# each for IMP_FUZZ_SECONDS (tests/tools/fuzz_smoke.sh).
if [ "${IMP_FUZZ_SECONDS:-20}" != 0 ] && command -v clang >/dev/null 2>&1; then
    cmake -S . -B "$build-fuzz" -DCMAKE_C_COMPILER=clang -DIMP_FUZZ=ON -DIMP_CUDA=OFF \
          -DIMP_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build-fuzz" -j"$jobs" --target fuzz_gguf fuzz_tokenizer fuzz_config >/dev/null
    args+=(-DIMP_FUZZ_BINARY="$root/$build-fuzz/tests/fuzz/fuzz_gguf")
fi
export IMP_FUZZ_SECONDS=${IMP_FUZZ_SECONDS:-20}

cmake -S . -B "$build" "${args[@]}"
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs"
