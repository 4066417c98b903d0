#!/usr/bin/env bash
# Bounded libFuzzer run: tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS [TARGET]
# TARGET: fuzz_gguf (the GGUF reader; default), fuzz_tokenizer or fuzz_config. Builds nothing: BUILD_DIR must
# hold tests/fuzz/TARGET (cmake -DIMP_FUZZ=ON with clang). fuzz_gguf starts from a copy of the
# seed corpus (tests/fuzz/corpus is never modified), fuzz_tokenizer from nothing; crash reproducers
# land in the working directory of the run (printed). Exit 0: no crash; non-zero: a crash, a
# leak, an out-of-memory or a timeout (1), or a usage error (2).
set -uo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [fuzz_gguf|fuzz_tokenizer|fuzz_config]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
target=${3:-fuzz_gguf}
fuzzer=$1/tests/fuzz/$target
[ -d "$1" ] || { echo "no build dir $1" >&2; exit 2; }
[ -x "$fuzzer" ] || { echo "no fuzzer at $fuzzer (configure with -DIMP_FUZZ=ON and clang)" >&2; exit 2; }
seconds=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/imp-$target.XXXXXX")
trap 'rm -rf "$work/corpus"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
[ "$target" = fuzz_gguf ] && { cp "$here"/corpus/*.gguf "$work/corpus/" 2>/dev/null || true; }
[ "$target" = fuzz_config ] && { cp "$here"/../../imp.conf.example "$work/corpus/" 2>/dev/null || true; }
echo "$target: ${seconds}s over $(ls "$work/corpus" | wc -l) seed files; artifacts in $work/artifacts"
# libFuzzer's default error exit code is 77, which ctest would read as "skipped": use 1.
"$fuzzer" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/artifacts/" -print_final_stats=1
rc=$?
if [ $rc -ne 0 ]; then
    echo "$target: FAILED (exit $rc); reproducers:" >&2
    ls -l "$work/artifacts" >&2
else
    rm -rf "$work"
fi
exit $rc
