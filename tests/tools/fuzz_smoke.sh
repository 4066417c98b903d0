#!/usr/bin/env bash
# Short libFuzzer runs of the GGUF reader, the tokenizer and the imp.conf parser (tests/fuzz/run-fuzz.sh) as a ctest
# test; fuzz_tokenizer is looked for next to fuzz_gguf.
# The fuzzer needs a clang -DIMP_FUZZ=ON build; it is looked for, in order, at $IMP_FUZZ_BINARY,
# at IMP_FUZZ_BINARY in BUILD_DIR's CMake cache (scripts/test.sh sets it), at
# BUILD_DIR/tests/fuzz/fuzz_gguf and at BUILD_DIR-fuzz/tests/fuzz/fuzz_gguf. None: skip (77).
# IMP_FUZZ_SECONDS (default 20; 0 skips) bounds the run.
set -uo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
seconds=${IMP_FUZZ_SECONDS:-20}
if [ "$seconds" = 0 ]; then
    echo "SKIPPED: IMP_FUZZ_SECONDS=0"
    exit 77
fi
candidates=()
[ -n "${IMP_FUZZ_BINARY:-}" ] && candidates+=("$IMP_FUZZ_BINARY")
if [ -f "$build/CMakeCache.txt" ]; then
    cached=$(sed -n 's/^IMP_FUZZ_BINARY:[A-Z]*=//p' "$build/CMakeCache.txt")
    [ -n "$cached" ] && candidates+=("$cached")
fi
candidates+=("$build/tests/fuzz/fuzz_gguf" "${build%/}-fuzz/tests/fuzz/fuzz_gguf")
fuzzer=
for c in "${candidates[@]}"; do
    if [ -x "$c" ]; then fuzzer=$c; break; fi
done
if [ -z "$fuzzer" ]; then
    echo "SKIPPED: built without IMP_FUZZ (no fuzz_gguf in ${candidates[*]})"
    exit 77
fi
fuzz_build=$(cd "$(dirname "$fuzzer")/../.." && pwd)
bash "$here/../fuzz/run-fuzz.sh" "$fuzz_build" "$seconds" fuzz_gguf
rc=$?
if [ $rc -eq 0 ]; then
    if [ -x "$fuzz_build/tests/fuzz/fuzz_tokenizer" ]; then
        bash "$here/../fuzz/run-fuzz.sh" "$fuzz_build" "$seconds" fuzz_tokenizer
        rc=$?
    else
        echo "fuzz_tokenizer not built next to fuzz_gguf; only the GGUF reader was fuzzed"
    fi
fi
if [ $rc -eq 0 ] && [ -x "$fuzz_build/tests/fuzz/fuzz_config" ]; then
    bash "$here/../fuzz/run-fuzz.sh" "$fuzz_build" "$seconds" fuzz_config
    rc=$?
fi
[ $rc -eq 77 ] && rc=1 # a failure must never read as "skipped"
exit $rc
