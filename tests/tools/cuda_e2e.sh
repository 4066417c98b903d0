#!/usr/bin/env bash
# The CUDA backend end to end against the CPU reference (helper_backend_compare) on tiny
# synthetic models of every architecture row: greedy tokens identical, teacher-forced KL below
# 1e-3, chunked prefill = one-shot, batched = alone and graphs on = off on the GPU (a token
# mismatch passes only as a tie within the noise the same run measures). Q8_0 and Q4_K_M for every
# preset, tiny (llama) in every other weight type imp-synth writes; KV f32 always, f16 too for
# Q8_0. Then --gpu-layers N (layers 0..N-1 on the GPU, the rest on the CPU) with N in
# {0, 1, n_layer-1, n_layer} on tiny, tiny-qwen3, tiny-gemma3 and tiny-llama3 (rope_freqs on
# both sides) by the same checks. Skips (77) when imp-cli lists no CUDA device.
set -uo pipefail
build=$1
devs=$("$build/imp-cli" --devices 2>&1)
if [[ "$devs" =~ CUDA\ backend:\ built\;\ ([0-9]+)\ device ]] && (( BASH_REMATCH[1] > 0 )); then
    echo "$devs" | head -2
else
    echo "SKIPPED: no CUDA device (imp-cli --devices: $(echo "$devs" | head -1))"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
runs=0
compare() { # file label kv [helper options...]
    runs=$((runs + 1))
    "$build/tests/helper_backend_compare" "$1" --device 0 --kv "$3" "${@:4}" >"$tmp/out.txt" 2>&1
    local rc=$? kl
    kl=$(sed -n 's/^teacher-forced (\([0-9]*\) positions): \(max KL [^ ]*\).*\(mean KL [^,]*\).*/\2, \3/p' "$tmp/out.txt")
    if [[ $rc -eq 0 ]]; then
        echo "ok   $2 kv $3: $kl"
    else
        # a skip here means the device imp-cli lists cannot run an engine: a failure of this test
        cat "$tmp/out.txt"
        echo "FAIL $2 kv $3 (exit $rc): ${kl:-no KL}"
        fail=$((fail + 1))
    fi
}
synth() { # preset type file
    "$build/imp-synth" "$1" "$3" --type "$2" --seed 11 >/dev/null 2>"$tmp/synth.err" && return 0
    cat "$tmp/synth.err"; echo "FAIL synth $1 $2"; fail=$((fail + 1)); return 1
}
run() { # preset type
    local f="$tmp/$1-$2.gguf"
    synth "$1" "$2" "$f" || return
    compare "$f" "$1 $2" f32
    [[ $2 == Q8_0 ]] && compare "$f" "$1 $2" f16
    rm -f "$f"
}
split_run() { # preset type kv: the model split at N = 0, 1, n_layer-1, n_layer
    local f="$tmp/$1-$2.gguf" L n
    synth "$1" "$2" "$f" || return
    L=$("$build/imp-cli" --inspect "$f" | sed -n 's/.*\.block_count = \([0-9]*\).*/\1/p')
    [[ $L =~ ^[0-9]+$ ]] || { echo "FAIL $1 $2: no block_count in imp-cli --inspect"; fail=$((fail + 1)); return; }
    for n in $(printf '%s\n' 0 1 $((L - 1)) "$L" | sort -un); do
        compare "$f" "$1 $2 gpu-layers $n of $L" "$3" --gpu-layers "$n"
    done
    rm -f "$f"
}
for preset in tiny tiny-llama3 tiny-qwen2 tiny-qwen3 tiny-gemma3 tiny-phi3; do
    run "$preset" Q8_0
    run "$preset" Q4_K_M
done
for type in F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_M Q4_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS; do
    run tiny "$type"
done
for preset in tiny tiny-qwen3 tiny-gemma3 tiny-llama3; do
    split_run "$preset" Q8_0 f16
done
split_run tiny F32 f32 # F32 weights: near-exact on the GPU (KL ~1e-14), so a hand-over error would stand out
[[ $fail -eq 0 ]] && echo "cuda_e2e: all $runs passed" || { echo "cuda_e2e: $fail of $runs failed"; exit 1; }
