#!/usr/bin/env bash
# imp-cli --tokenize / --tokenize-file / --detokenize: ids and pieces, --ids, --add-bos and
# --parse-special, exact bytes back from --detokenize, vocabulary-only GGUF files (no tensors)
# giving the same ids as the full model, and clear errors (exit 1/2, never a crash).
# Real models (SmolLM2, Gemma 3) are used when scripts/get-models.sh has fetched them.
set -uo pipefail
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); fi; }
cli="$build/imp-cli"
gpl=/usr/share/common-licenses/GPL-3

# Synthetic SPM vocabulary (always available): text -> ids -> the same text.
"$build/imp-synth" tiny "$tmp/tiny.gguf" --type F16 2>/dev/null || { echo "imp-synth failed"; exit 1; }
printf 'hello world, 123 \xc3\xa9\xe2\x82\xac\n' >"$tmp/text.txt"
"$cli" --model "$tmp/tiny.gguf" --tokenize-file "$tmp/text.txt" --ids >"$tmp/tiny.ids" 2>/dev/null
check "[ -s $tmp/tiny.ids ]" "tiny: ids printed"
"$cli" --model "$tmp/tiny.gguf" --detokenize-file "$tmp/tiny.ids" >"$tmp/tiny.out"
check "cmp -s $tmp/text.txt $tmp/tiny.out" "tiny: round trip"

# Errors
"$cli" --tokenize x >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'need --model' $tmp/err" "no --model: usage error"
"$cli" --model "$tmp/none.gguf" --tokenize x >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'none.gguf' $tmp/err" "missing file: exit 1 naming it"
"$cli" --model "$tmp/text.txt" --tokenize x >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && [ \$(wc -l <$tmp/err) -eq 1 ]" "not a GGUF: one-line error"
"$cli" --model "$tmp/tiny.gguf" --detokenize 1,99999999 >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'outside the vocabulary' $tmp/err" "id out of range"
"$cli" --model "$tmp/tiny.gguf" --detokenize 1,x2 >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'bad token id' $tmp/err" "bad id list"
"$cli" --model "$tmp/tiny.gguf" --tokenize x --detokenize 1 >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "two commands at once"

real() { # model, bos id, special text, special id
    local m="$src/models/$1" bos=$2 sp=$3 spid=$4 name=$1
    if [ ! -f "$m" ]; then echo "skip $name: not present (scripts/get-models.sh fetches it)"; return; fi
    "$build/tests/helper_vocab_only" "$m" "$tmp/vocab.gguf" || { echo "FAIL: vocab-only copy"; fail=$((fail + 1)); return; }
    check "! \"$cli\" --inspect $tmp/vocab.gguf | grep -q 'blk\.'" "$name: vocab-only file has no tensors"
    "$cli" --model "$m" --tokenize-file "$gpl" --ids >"$tmp/full.ids" 2>/dev/null
    "$cli" --model "$tmp/vocab.gguf" --tokenize-file "$gpl" --ids >"$tmp/vocab.ids" 2>/dev/null
    check "[ -s $tmp/full.ids ] && cmp -s $tmp/full.ids $tmp/vocab.ids" "$name: vocab-only ids = full model ids"
    check "[ \$(wc -l <$tmp/full.ids) -eq 1 ]" "$name: --ids prints one line"
    "$cli" --model "$tmp/vocab.gguf" --detokenize-file "$tmp/vocab.ids" >"$tmp/gpl.out"
    check "cmp -s $gpl $tmp/gpl.out" "$name: GPL-3 round trip through the CLI"
    "$cli" --model "$tmp/vocab.gguf" --tokenize-file "$gpl" --ids --add-bos >"$tmp/bos.ids" 2>/dev/null
    check "[ \"\$(cat $tmp/bos.ids)\" = \"$bos \$(cat $tmp/vocab.ids)\" ]" "$name: --add-bos prepends $bos"
    check "[ \"\$(\"$cli\" --model $tmp/vocab.gguf --tokenize '$sp' --ids --parse-special 2>/dev/null)\" = $spid ]" \
        "$name: '$sp' parsed as $spid"
    check "[ \$(\"$cli\" --model $tmp/vocab.gguf --tokenize '$sp' --ids 2>/dev/null | wc -w) -gt 1 ]" \
        "$name: '$sp' as text without --parse-special"
    "$cli" --model "$tmp/vocab.gguf" --detokenize "$spid" >"$tmp/sp.out"
    check "[ ! -s $tmp/sp.out ]" "$name: control token hidden"
    check "[ \"\$(\"$cli\" --model $tmp/vocab.gguf --detokenize $spid --show-special)\" = '$sp' ]" "$name: --show-special"
}
real SmolLM2-135M-Instruct.Q4_1.gguf 1 '<|im_end|>' 2
real gemma-3-270m-q4_k_m.gguf 2 '<start_of_turn>' 105
if [ -f "$src/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    "$cli" --model "$src/models/SmolLM2-135M-Instruct.Q4_1.gguf" --tokenize "Hello world" >"$tmp/pieces" 2>/dev/null
    check "grep -q \"19556 -> 'Hello'\" $tmp/pieces && grep -q \"905 -> ' world'\" $tmp/pieces" "pieces listing"
    check "[ \"\$(\"$cli\" --model $src/models/SmolLM2-135M-Instruct.Q4_1.gguf --detokenize 19556,905)\" = 'Hello world' ]" "detokenize list"
fi

# --chat-render: the template detected from the file, the prompt's bytes, its ids with specials
if [ -f "$src/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    m="$src/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    "$cli" --model "$m" --chat-render "Hi" --system "Be brief." >"$tmp/chat.txt" 2>"$tmp/chat.err"
    printf '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' >"$tmp/chat.want"
    check "cmp -s $tmp/chat.txt $tmp/chat.want" "chat-render: chatml prompt"
    check "grep -q 'picked chatml' $tmp/chat.err" "chat-render: says which template it picked"
    # ids as HF tokenizers gives them (tests/unit/tokref.py encode --parse-special)
    check "[ \"\$(\"$cli\" --model $m --chat-render Hi --ids 2>/dev/null)\" = '1 4093 198 26843 2 198 1 520 9531 198' ]" \
        "chat-render --ids: specials parsed, no BOS (SmolLM2 adds none)"
fi
if [ -f "$src/models/gemma-3-270m-q4_k_m.gguf" ]; then
    # ids as sentencepiece gives them (tokref.py encode --parse-special --add-bos)
    check "[ \"\$(\"$cli\" --model $src/models/gemma-3-270m-q4_k_m.gguf --chat-render Hi --chat-template gemma --ids 2>/dev/null)\" = '2 105 2364 107 10979 106 107 105 4368 107' ]" \
        "chat-render gemma --ids: BOS + turn markers"
fi
"$cli" --model "$tmp/tiny.gguf" --chat-render x --chat-template bogus >/dev/null 2>"$tmp/err"; rc=$?
check "[ $rc -eq 2 ] && grep -q 'known:' $tmp/err" "unknown chat template lists the known ones"

[ $fail -eq 0 ] && echo "tool_tokenize: all checks passed"
exit $((fail > 0))
