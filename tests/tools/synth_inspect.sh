#!/usr/bin/env bash
# imp-synth tiny -> imp-cli --inspect shows the right tensors and shapes; bad files (truncated,
# bit-flipped, oversized counts) give a one-line error and exit 1 — never a crash.
set -uo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); fi; }

"$build/imp-synth" tiny "$tmp/tiny.gguf" --type F16 --seed 3 2>"$tmp/synth.err" || { cat "$tmp/synth.err"; exit 1; }
"$build/imp-cli" --inspect "$tmp/tiny.gguf" >"$tmp/inspect.txt" || { echo "inspect failed"; exit 1; }

# tiny: 2 layers x 9 tensors + token_embd + output_norm + output = 21 tensors
check "grep -q '21 tensors' $tmp/inspect.txt" "tensor count"
check "grep -Eq 'token_embd.weight +F16 +256 x 512 ' $tmp/inspect.txt" "token_embd shape"
check "grep -Eq 'blk.0.attn_q.weight +F16 +256 x 256 ' $tmp/inspect.txt" "attn_q shape"
check "grep -Eq 'blk.1.attn_k.weight +F16 +256 x 128 ' $tmp/inspect.txt" "attn_k shape (2 kv heads x 64)"
check "grep -Eq 'blk.1.ffn_down.weight +F16 +512 x 256 ' $tmp/inspect.txt" "ffn_down shape"
check "grep -Eq 'blk.0.attn_norm.weight +F32 +256 ' $tmp/inspect.txt" "norm is F32"
check "grep -Eq 'output.weight +F16 +256 x 512 ' $tmp/inspect.txt" "output shape"
check "grep -q \"general.architecture = 'llama'\" $tmp/inspect.txt" "architecture key"
check "grep -q 'llama.block_count = 2' $tmp/inspect.txt" "block_count key"
check "grep -Eq 'tokenizer.ggml.tokens = .*\(512 string\)' $tmp/inspect.txt" "vocab size"

# same seed -> same bytes; another seed -> other bytes
"$build/imp-synth" tiny "$tmp/tiny2.gguf" --type F16 --seed 3 2>/dev/null
"$build/imp-synth" tiny "$tmp/tiny3.gguf" --type F16 --seed 4 2>/dev/null
check "cmp -s $tmp/tiny.gguf $tmp/tiny2.gguf" "deterministic output"
check "! cmp -s $tmp/tiny.gguf $tmp/tiny3.gguf" "seed changes weights"

# bad files: every truncation of the header region, then some further in
size=$(stat -c %s "$tmp/tiny.gguf")
for n in 0 1 3 4 7 8 15 16 23 24 40 100 1000 5000 20000 $((size / 2)) $((size - 1)); do
    head -c "$n" "$tmp/tiny.gguf" >"$tmp/trunc.gguf"
    "$build/imp-cli" --inspect "$tmp/trunc.gguf" >/dev/null 2>"$tmp/err.txt"
    rc=$?
    check "[ $rc -eq 1 ]" "truncated at $n: exit $rc (want 1)"
    check "[ \$(wc -l <$tmp/err.txt) -eq 1 ]" "truncated at $n: one-line error"
done
# oversized tensor count (bytes 8..15) and kv count (16..23)
cp "$tmp/tiny.gguf" "$tmp/big.gguf"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$tmp/big.gguf" bs=1 seek=8 conv=notrunc 2>/dev/null
"$build/imp-cli" --inspect "$tmp/big.gguf" >/dev/null 2>"$tmp/err.txt"
check "[ $? -eq 1 ] && grep -q 'offset' $tmp/err.txt" "huge tensor count rejected with an offset: $(cat $tmp/err.txt)"
cp "$tmp/tiny.gguf" "$tmp/big.gguf"
printf '\x00\x00\x00\x00\x00\x00\x00\x01' | dd of="$tmp/big.gguf" bs=1 seek=16 conv=notrunc 2>/dev/null
"$build/imp-cli" --inspect "$tmp/big.gguf" >/dev/null 2>"$tmp/err.txt"
check "[ $? -eq 1 ]" "huge kv count rejected: $(cat $tmp/err.txt)"
# big-endian header (version stored byte-swapped)
cp "$tmp/tiny.gguf" "$tmp/be.gguf"
printf '\x00\x00\x00\x03' | dd of="$tmp/be.gguf" bs=1 seek=4 conv=notrunc 2>/dev/null
"$build/imp-cli" --inspect "$tmp/be.gguf" >/dev/null 2>"$tmp/err.txt"
check "[ $? -eq 1 ] && grep -qi 'big-endian' $tmp/err.txt" "big-endian rejected: $(cat $tmp/err.txt)"
# random bit flips in the header: exit 0 or 1, never a signal
for seed in $(seq 1 40); do
    cp "$tmp/tiny.gguf" "$tmp/flip.gguf"
    off=$(( (seed * 7919) % 6000 ))
    printf "\\x$(printf %02x $(( (seed * 37) % 256 )))" | dd of="$tmp/flip.gguf" bs=1 seek=$off conv=notrunc 2>/dev/null
    "$build/imp-cli" --inspect "$tmp/flip.gguf" >/dev/null 2>&1
    rc=$?
    check "[ $rc -le 1 ]" "bit flip at $off: exit $rc"
done

# usage errors
"$build/imp-synth" no-such-preset "$tmp/x.gguf" 2>/dev/null; check "[ $? -eq 2 ]" "unknown preset"
"$build/imp-synth" tiny "$tmp/x.gguf" --type Q9_9 2>/dev/null; check "[ $? -eq 2 ]" "unknown type"
"$build/imp-cli" --inspect "$tmp/missing.gguf" 2>/dev/null; check "[ $? -eq 1 ]" "missing file"

echo "synth_inspect: $fail failed"
[ $fail -eq 0 ]
