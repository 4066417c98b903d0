#!/usr/bin/env bash
# --gpu-layers N (runtime.gpu_layers) where no GPU is needed: the key and its flags parse and are
# range-checked, the value is ignored on the CPU, and the split itself runs with a second CPU
# backend in the GPU's place (helper_backend_compare --device cpu --gpu-layers N): logits,
# greedy tokens, chunked prefill and a batch of 4 bit-identical to the CPU reference for
# N in {0, 1, n_layer-1, n_layer}; the VRAM plan's advice (helper_vram_plan) at made-up amounts
# of free memory. The GPU split is checked by cuda_e2e.sh on a GPU machine.
build=$(cd "$1" && pwd)
. "$(dirname "$0")/lib/common.sh"
cli="$build/imp-cli"
scratch_home

# the key and its flags
gl() { "$cli" --print-config "$@" 2>&1 | grep -E '^gpu_layers = '; }
check "[[ \"\$(gl)\" == *'gpu_layers = -1'*'from: default'* ]]" "runtime.gpu_layers defaults to -1 (all)"
check "[[ \"\$(gl --gpu-layers 5)\" == *'gpu_layers = 5'*'from: flag'* ]]" "--gpu-layers sets it"
check "[[ \"\$(gl -ngl 0)\" == *'gpu_layers = 0'*'from: flag'* ]]" "-ngl sets it"
check "[[ \"\$(gl --set runtime.gpu_layers=999)\" == *'gpu_layers = 999'*'from: --set'* ]]" "--set runtime.gpu_layers"
printf '[runtime]\ngpu_layers = 3\n' >"$tmp/ngl.conf"
check "[[ \"\$(gl --config $tmp/ngl.conf)\" == *'gpu_layers = 3'*'ngl.conf:2'* ]]" "gpu_layers from a file"
out=$("$cli" --print-config --gpu-layers -2 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'--gpu-layers'*'gpu_layers'*'-2'* ]]" "--gpu-layers -2 is refused, naming the flag"
out=$("$cli" --print-config -ngl many 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'-ngl'* ]]" "-ngl with a non-number is refused"
printf '[runtime]\ngpu_layers = "all"\n' >"$tmp/bad.conf"
out=$("$cli" --print-config --config "$tmp/bad.conf" 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'bad.conf:2'* ]]" "gpu_layers = \"all\" in a file: the line of the error"

# on the CPU the value changes nothing; 0 is the CPU alone wherever the device is
"$build/imp-synth" tiny "$tmp/tiny.gguf" --type Q8_0 --seed 5 2>/dev/null || { echo "synth failed"; exit 1; }
g() { "$cli" --model "$tmp/tiny.gguf" --prompt "hello world" -n 8 --temperature 0 --quiet "$@"; }
g --device cpu >"$tmp/o0" 2>/dev/null
g --device cpu --gpu-layers 1 >"$tmp/o1" 2>/dev/null
check "[[ -s $tmp/o0 ]] && cmp -s $tmp/o0 $tmp/o1" "--gpu-layers on the CPU: the same text"
g -ngl 0 --log-level info >"$tmp/o2" 2>"$tmp/e2"
check "grep -q 'engine: cpu backend (device -1)' $tmp/e2 && cmp -s $tmp/o0 $tmp/o2" "-ngl 0: the CPU alone"

# the split's bookkeeping on two CPU backends: every number equal to the reference
for preset in tiny tiny-qwen3 tiny-gemma3 tiny-llama3; do
    f="$tmp/$preset.gguf"
    "$build/imp-synth" "$preset" "$f" --type Q8_0 --seed 11 >/dev/null 2>&1 || { echo "FAIL: synth $preset"; fail=$((fail + 1)); continue; }
    L=$("$cli" --inspect "$f" | sed -n 's/.*\.block_count = \([0-9]*\).*/\1/p')
    [[ $L =~ ^[0-9]+$ ]] || { echo "FAIL: $preset: no block_count"; fail=$((fail + 1)); continue; }
    for n in $(printf '%s\n' 0 1 $((L - 1)) "$L" | sort -un); do
        # how the engine reports itself: split (cpu+cpu, n layers on the stand-in GPU) for
        # 0 < n < L, else one CPU backend
        want="vs cpu+cpu device -1 ([0-9]* threads, $n of $L layers"
        (( n == 0 || n == L )) && want="vs cpu device -1 ([0-9]* threads, 0 of $L layers"
        if "$build/tests/helper_backend_compare" "$f" --device cpu --gpu-layers "$n" --max-kl 0 --tokens 24 \
            >"$tmp/out.txt" 2>&1 && grep -q "$want" "$tmp/out.txt"; then
            echo "ok   $preset split at $n of $L layers (two CPU backends): bit-identical"
        else
            cat "$tmp/out.txt"; echo "FAIL: $preset split at $n of $L"; fail=$((fail + 1))
        fi
    done
done
# the VRAM plan's arithmetic and its --gpu-layers / --max-seq-len advice, at made-up free memory
for preset in tiny-gemma3 tiny; do
    f="$tmp/$preset.gguf"
    if "$build/tests/helper_vram_plan" "$f" >"$tmp/out.txt" 2>&1; then
        echo "ok   $preset VRAM plan: $(grep -c '' "$tmp/out.txt") lines, $(tail -1 "$tmp/out.txt")"
    else
        cat "$tmp/out.txt"; echo "FAIL: $preset VRAM plan"; fail=$((fail + 1))
    fi
done
"$build/tests/helper_backend_compare" "$tmp/tiny.gguf" --device cpu --gpu-layers -2 >/dev/null 2>&1
check "[[ \$? -eq 2 ]]" "helper_backend_compare refuses --gpu-layers -2"
[[ $fail -eq 0 ]] && echo "gpu_layers: all passed" || { echo "gpu_layers: $fail failed"; exit 1; }
