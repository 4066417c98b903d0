#!/usr/bin/env bash
# GPU checks for a machine with a CUDA device, from binaries built elsewhere:
#
#   scripts/gpu-check.sh pack BUILD DIR     copy (stripped) the binaries the checks need from a
#                                           CUDA build into DIR, laid out like a build folder
#   scripts/gpu-check.sh test DIR OUT       op tests + end-to-end GPU-vs-CPU tests, logs in OUT
#   scripts/gpu-check.sh bench DIR OUT [PRESET:TYPE ...]
#                                           synthesize models and run imp-cli --bench on them
#                                           (BENCH_PP, BENCH_TG, BENCH_REPS: sizes; BENCH_DEPTH=D:
#                                           also tgN with D tokens already in the KV cache)
#
# (The lent GPU machine has the runtime libraries but not our -dev packages, so the build
# happens here and only the binaries travel.)
set -uo pipefail
cmd=${1:-}
case "$cmd" in
pack)
    build=$2 dir=$3
    mkdir -p "$dir/tests"
    for f in imp-cli imp-bench imp-synth tests/test_backend_ops tests/helper_backend_compare; do
        cp "$build/$f" "$dir/$f" && strip "$dir/$f"
    done
    du -sh "$dir"
    ;;
test)
    dir=$2 out=$3
    mkdir -p "$out"
    "$dir/imp-cli" --devices
    echo "== op tests"
    "$dir/tests/test_backend_ops" >"$out/ops.log" 2>&1
    echo "test_backend_ops exit $?"
    grep -E "FAIL|fail|checks" "$out/ops.log" | tail -40
    echo "== end to end"
    bash tests/tools/cuda_e2e.sh "$dir" 2>&1 | tee "$out/e2e.log" | grep -Ev '^ok ' | tail -60
    grep -c '^ok ' "$out/e2e.log"
    ;;
bench)
    dir=$2 out=$3
    shift 3
    mkdir -p "$out"
    tmp=${TMPDIR:-/tmp}/imp-bench
    mkdir -p "$tmp"
    for spec in "$@"; do
        preset=${spec%%:*} type=${spec##*:}
        f="$tmp/$preset-$type.gguf"
        "$dir/imp-synth" "$preset" "$f" --type "$type" --seed 1 >/dev/null || { echo "synth $spec failed"; continue; }
        echo "== $preset $type"
        "$dir/imp-cli" --model "$f" --bench --bench-pp "${BENCH_PP:-512}" --max-tokens "${BENCH_TG:-128}" \
            --bench-reps "${BENCH_REPS:-5}" --quiet 2>&1 | tee -a "$out/bench.log"
        if [[ -n "${BENCH_DEPTH:-}" ]]; then
            # decode at a long context: tgN @ dD (no pp: --bench-pp 0)
            "$dir/imp-cli" --model "$f" --bench --bench-pp 0 --max-tokens "${BENCH_TG:-128}" \
                --bench-depth "$BENCH_DEPTH" --bench-reps "${BENCH_REPS:-5}" --quiet 2>&1 | tee -a "$out/bench.log"
        fi
        rm -f "$f"
    done
    ;;
*)
    echo "usage: scripts/gpu-check.sh pack BUILD DIR | test DIR OUT | bench DIR OUT PRESET:TYPE..." >&2
    exit 2
    ;;
esac
