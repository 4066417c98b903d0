#!/usr/bin/env bash
# The forward pass end to end on tiny synthetic models of every architecture row: chunked
# prefill = one-shot, decode = prefill, a batch of 3 sequences = 3 runs, threads agree bit for
# bit (helper_forward check). tiny (llama) runs in every weight type imp-synth writes.
set -uo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run() { # preset type
    local f="$tmp/$1-$2.gguf"
    if ! "$build/imp-synth" "$1" "$f" --type "$2" --seed 11 2>"$tmp/synth.err"; then
        cat "$tmp/synth.err"; echo "FAIL: synth $1 $2"; fail=$((fail + 1)); return
    fi
    if "$build/tests/helper_forward" "$f" check >"$tmp/out.txt" 2>&1; then
        echo "ok   $1 $2: $(grep -c 'max rel diff' "$tmp/out.txt") comparisons, $(grep 'threads' "$tmp/out.txt")"
    else
        cat "$tmp/out.txt"; echo "FAIL: $1 $2"; fail=$((fail + 1))
    fi
    rm -f "$f"
}
for preset in tiny tiny-llama3 tiny-qwen2 tiny-qwen3 tiny-gemma3 tiny-phi3; do
    run "$preset" Q8_0
    run "$preset" Q4_K_M
done
for type in F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS; do
    run tiny "$type"
done
# the architecture table refuses what it does not know, with a message
"$build/imp-synth" tiny-moe "$tmp/moe.gguf" --type Q8_0 --seed 1 2>/dev/null
out=$("$build/tests/helper_forward" "$tmp/moe.gguf" check 2>&1)
if [[ $? -eq 0 || "$out" != *"qwen3moe"*"not supported"* ]]; then echo "FAIL: qwen3moe not refused: $out"; fail=$((fail + 1)); fi
[[ $fail -eq 0 ]] && echo "forward: all passed" || { echo "forward: $fail failed"; exit 1; }
