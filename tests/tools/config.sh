#!/usr/bin/env bash
# imp.conf through imp-cli: the precedence of files, --set and named flags as --print-config
# shows it, errors that name the file and line, and keys whose effect shows on the CPU backend
# (docs/config.md). Runs in a scratch HOME and working directory.
build=$(cd "$1" && pwd)
. "$(dirname "$0")/lib/common.sh"
cli="$build/imp-cli"
scratch_home
mkdir -p "$HOME/.config/imp"
topk() { "$cli" --print-config "$@" 2>&1 | grep -E '^top_k = '; }

check "[[ \"\$(topk)\" == *'top_k = 40'*'from: default'* ]]" "no file: the embedded default"
printf '[generation]\ntop_k = 11\n' >"$HOME/.config/imp/imp.conf"
check "[[ \"\$(topk)\" == *'top_k = 11'*'imp.conf:2'* ]]" "~/.config/imp/imp.conf is read"
printf '# local\n[generation]\ntop_k = 12\n' >imp.conf
check "[[ \"\$(topk)\" == *'top_k = 12'*'imp.conf:3'* ]]" "./imp.conf beats the home file"
printf '[generation]\ntop_k = 13\n' >"$tmp/env.conf"
check "[[ \"\$(IMP_CONFIG=$tmp/env.conf topk)\" == *'top_k = 13'*'env.conf:2'* ]]" "\$IMP_CONFIG beats ./imp.conf"
printf '[generation]\n\ntop_k = 14\n' >"$tmp/explicit.conf"
check "[[ \"\$(IMP_CONFIG=$tmp/env.conf topk --config $tmp/explicit.conf)\" == *'top_k = 14'*'explicit.conf:3'* ]]" "--config beats \$IMP_CONFIG"
check "[[ \"\$(topk --config $tmp/explicit.conf --set generation.top_k=15)\" == *'top_k = 15'*'from: --set'* ]]" "--set beats the file"
check "[[ \"\$(topk --set generation.top_k=15 --top-k 16)\" == *'top_k = 16'*'from: flag'* ]]" "a named flag is a --set shorthand (last wins)"
rm -f imp.conf "$HOME/.config/imp/imp.conf"

# errors name the file and line, suggest the nearest key, and exit non-zero
printf '[generation]\ntopk = 3\n' >"$tmp/bad.conf"
out=$("$cli" --print-config --config "$tmp/bad.conf" 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'bad.conf:2'*'did you mean generation.top_k'* ]]" "unknown key: file:line and a suggestion"
printf '[generation]\ntop_p = "high"\n' >"$tmp/bad2.conf"
out=$("$cli" --print-config --config "$tmp/bad2.conf" 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'bad2.conf:2'*'expected'* ]]" "wrong type: the expected type"
out=$("$cli" --print-config --config "$tmp/none.conf" 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'none.conf'* ]]" "missing --config file is an error"

# keys with an effect on the CPU backend
"$build/imp-synth" tiny "$tmp/tiny.gguf" --type Q8_0 --seed 5 2>/dev/null
g() { "$cli" --model "$tmp/tiny.gguf" --prompt "hello world" "$@"; }
printf '[generation]\nmax_tokens = 3\ntemperature = 0\n' >"$tmp/gen.conf"
g --config "$tmp/gen.conf" >"$tmp/o1" 2>"$tmp/e1"
check "grep -q 'generation 3 tokens' $tmp/e1" "generation.max_tokens from a file limits the output"
g --config "$tmp/gen.conf" >"$tmp/o2" 2>/dev/null
check "cmp -s $tmp/o1 $tmp/o2" "generation.temperature = 0 from a file: greedy, repeatable"
g --set generation.max_tokens=8 --set generation.temperature=1 --set generation.top_k=1 >"$tmp/k1" 2>/dev/null
g --set generation.max_tokens=8 --set generation.temperature=0 >"$tmp/k0" 2>/dev/null
check "cmp -s $tmp/k1 $tmp/k0" "generation.top_k = 1 makes sampling greedy"
g -n 8 --temperature 1 --top-k 0 --top-p 1 --min-p 0 --set generation.seed=9 >"$tmp/s1" 2>/dev/null
g -n 8 --temperature 1 --top-k 0 --top-p 1 --min-p 0 --set generation.seed=9 >"$tmp/s2" 2>/dev/null
check "cmp -s $tmp/s1 $tmp/s2" "generation.seed repeats a sample"
g -n 2 --set generation.chat_template=none 2>"$tmp/e3" >/dev/null
check "grep -q 'chat template: none' $tmp/e3" "generation.chat_template picks the format"
out=$(g -n 2 --set runtime.max_seq_len=4 2>&1); rc=$?
check "[[ $rc -ne 0 && \"\$out\" == *'context holds 4'* ]]" "runtime.max_seq_len bounds the context"
g -n 2 --set runtime.threads=1 --set runtime.max_batch=7 --set kv_cache.block_size=32 --set diagnostics.log_level=info \
  >/dev/null 2>"$tmp/e4"
check "grep -q 'engine: cpu backend (device -1), 1 threads, .*steps of 7 tokens, KV pool .* blocks of 32' $tmp/e4" \
      "runtime.threads, runtime.max_batch, kv_cache.block_size (seen with diagnostics.log_level = info)"
g -n 2 --set diagnostics.log_level=warn >/dev/null 2>"$tmp/e5"
check "! grep -q 'engine:' $tmp/e5" "diagnostics.log_level = warn hides info lines"
"$cli" --model "$tmp/tiny.gguf" --bench --set bench.pp=16 --set bench.tg=4 --set bench.reps=2 >"$tmp/b" 2>/dev/null
check "grep -q '| pp16 |' $tmp/b && grep -q '| tg4 |' $tmp/b" "bench.pp and bench.tg set the tests"
# sampler keys: the same seeded run with the key changed gives another text, and with the key
# set to its default the same text (each key does something, and only when set)
sk() { g -n 32 --seed 3 "$@" 2>/dev/null; }
differs() { # description, common args..., --, changed args...
    local desc=$1; shift
    local common=() changed=()
    while [[ $1 != -- ]]; do common+=("$1"); shift; done; shift
    changed=("$@")
    sk "${common[@]}" >"$tmp/d0"
    sk "${common[@]}" "${changed[@]}" >"$tmp/d1"
    check "! cmp -s $tmp/d0 $tmp/d1" "$desc"
}
flat=(--temperature 1.5 --top-k 0 --top-p 1 --min-p 0)
greedy=(--temperature 0)
differs "generation.top_p changes sampling" "${flat[@]}" -- --set generation.top_p=0.05
differs "generation.min_p changes sampling" "${flat[@]}" -- --set generation.min_p=0.9
differs "generation.typical_p changes sampling" "${flat[@]}" -- --set generation.typical_p=0.05
differs "generation.temperature changes sampling" "${flat[@]}" -- --set generation.temperature=0.05
differs "generation.mirostat changes sampling" "${flat[@]}" -- --set generation.mirostat=2
differs "generation.mirostat_tau changes Mirostat" "${flat[@]}" --mirostat 2 -- --set generation.mirostat_tau=0.5
differs "generation.mirostat_eta changes Mirostat" "${flat[@]}" --mirostat 2 --mirostat-tau 1 -- --set generation.mirostat_eta=1
differs "generation.repeat_penalty changes greedy output" "${greedy[@]}" -- --set generation.repeat_penalty=3
differs "generation.repeat_last_n changes the penalty" "${greedy[@]}" --repeat-penalty 3 -- --set generation.repeat_last_n=0
differs "generation.frequency_penalty changes greedy output" "${greedy[@]}" -- --set generation.frequency_penalty=2
differs "generation.presence_penalty changes greedy output" "${greedy[@]}" -- --set generation.presence_penalty=2
differs "generation.dry_multiplier changes greedy output" "${greedy[@]}" -- --set generation.dry_multiplier=3
differs "generation.dry_allowed_length changes DRY" "${greedy[@]}" --dry-multiplier 3 -- --set generation.dry_allowed_length=12
differs "generation.dry_base changes DRY" "${greedy[@]}" --dry-multiplier 0.01 -- --set generation.dry_base=8
differs "generation.dry_penalty_last_n changes DRY" "${greedy[@]}" --dry-multiplier 3 -- --set generation.dry_penalty_last_n=4
# a key set to its default changes nothing
sk "${flat[@]}" >"$tmp/n0"
sk "${flat[@]}" --set generation.typical_p=1 --set generation.repeat_penalty=1 --set generation.dry_multiplier=0 >"$tmp/n1"
check "cmp -s $tmp/n0 $tmp/n1" "keys set to their defaults change nothing"
"$cli" --model "$tmp/tiny.gguf" --bench --set bench.pp=8 --set bench.tg=2 --set bench.reps=1 >"$tmp/b1" 2>/dev/null
check "grep -q '| pp8 | .* ± 0.00 |' $tmp/b1" "bench.reps = 1: one run, no spread"
[[ $fail -eq 0 ]] && echo "config: all passed" || { echo "config: $fail failed"; exit 1; }
