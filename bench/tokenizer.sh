#!/usr/bin/env bash
# Tokenizer speed: imp-cli --tokenize-file on a text (default GPL-3) for each model given,
# REPS runs each (one core: the tokenizer is single-threaded); prints tokens, best and median ms.
# usage: bench/tokenizer.sh BUILD_DIR MODEL.gguf... [REPS=9] [TEXT=/usr/share/common-licenses/GPL-3]
set -euo pipefail
build=$1; shift
reps=${REPS:-9}
text=${TEXT:-/usr/share/common-licenses/GPL-3}
printf '%-40s %8s %8s %9s %9s\n' model bytes tokens best_ms median_ms
for m in "$@"; do
    times=()
    line=""
    for _ in $(seq "$reps"); do
        line=$(taskset -c 0 "$build/imp-cli" --model "$m" --tokenize-file "$text" --ids 2>&1 >/dev/null | tail -1)
        times+=("$(sed -E 's/.* in ([0-9.]+) ms/\1/' <<<"$line")")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    best=$(head -1 <<<"$sorted")
    median=$(sed -n "$(((reps + 1) / 2))p" <<<"$sorted")
    bytes=$(sed -E 's/imp-cli: ([0-9]+) bytes.*/\1/' <<<"$line")
    tokens=$(sed -E 's/.*-> ([0-9]+) tokens.*/\1/' <<<"$line")
    printf '%-40s %8s %8s %9s %9s\n' "$(basename "$m")" "$bytes" "$tokens" "$best" "$median"
done
