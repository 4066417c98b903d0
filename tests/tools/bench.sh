#!/usr/bin/env bash
# imp-bench and imp-cli --bench (--bench-depth) on tiny synthetic models: the rows (count, order,
# llama-bench labels such as `tg4 @ d16`), that every number parses and is positive, the decode
# vs bandwidth table, CSV and JSON that parse with the same rows, the context sized to depth +
# test length, and bad flags / bad models failing with the documented status and a message.
# No assertion on speed. Runs in a scratch HOME and working directory (no imp.conf applies).
build=$(cd "$1" && pwd)
. "$(dirname "$0")/lib/common.sh"
bench="$build/imp-bench"
cli="$build/imp-cli"
scratch_home

"$build/imp-synth" tiny "$tmp/a.gguf" --type Q8_0 --seed 5 2>/dev/null || { echo "synth failed"; exit 1; }
"$build/imp-synth" tiny "$tmp/b.gguf" --type F16 --seed 6 2>/dev/null || { echo "synth failed"; exit 1; }
py=$(command -v python3 || true)

# md_rows FILE: the rows of the first markdown table (after its header and separator), and
# md_rows2 FILE: those of the second (decode vs bandwidth).
md_rows() { awk '/^\| model \| size /{t=1; getline; next} t && /^\|/{print; next} t{exit}' "$1"; }
md_rows2() { awk '/^\| model \| backend /{t=1; getline; next} t && /^\|/{print}' "$1"; }
# cell FILE N: column N (1-based) of each row of the first table, trimmed
cell() { md_rows "$1" | awk -F' [|] ' -v n="$2" '{gsub(/^\| | \|$/, ""); split($0, c, / \| /); print c[n]}'; }
cell2() { md_rows2 "$1" | awk -v n="$2" '{gsub(/^\| | \|$/, ""); split($0, c, / \| /); print c[n]}'; }
positive() { awk '{ if (!($1 ~ /^[0-9]+(\.[0-9]+)?$/ && $1 + 0 > 0)) bad = 1 } END { exit bad || NR == 0 }'; }

# ---- imp-bench, markdown: 2 depths x (pp8, tg4) on one model, one thread count
"$bench" -m "$tmp/a.gguf" -p 8 -n 4 -d 0,16 -r 2 -t 1 >"$tmp/md" 2>"$tmp/md.err"; rc=$?
check "[[ $rc -eq 0 ]] || { cat $tmp/md.err; false; }" "imp-bench md runs (exit $rc)"
check "[[ \"\$(head -2 $tmp/md)\" == \$'| model | size | params | backend | threads | test | t/s |\n| --- | ---: | ---: | --- | ---: | --- | ---: |' ]]" \
      "md: llama-bench's header"
check "[[ \"\$(cell $tmp/md 6 | paste -sd/)\" == 'pp8/tg4/pp8 @ d16/tg4 @ d16' ]]" "md: 4 rows labelled pp8, tg4, pp8 @ d16, tg4 @ d16 in order"
check "[[ \"\$(md_rows $tmp/md | awk -F'|' '{print NF}' | sort -u)\" == 9 ]]" "md: 7 cells per row"
check "[[ \"\$(cell $tmp/md 4 | sort -u)\" == cpu && \"\$(cell $tmp/md 5 | sort -u)\" == 1 ]]" "md: backend cpu, 1 thread"
check "cell $tmp/md 2 | sed -n 's/ MiB\$//p' | positive" "md: size in MiB, positive"
check "cell $tmp/md 3 | sed -n 's/ M\$//p' | positive" "md: params in millions, positive"
check "cell $tmp/md 7 | sed -n 's/ ± .*//p' | positive && [[ \$(cell $tmp/md 7 | grep -Ec '^[0-9]+\.[0-9]{2} ± [0-9]+\.[0-9]{2}\$') -eq 4 ]]" \
      "md: t/s = mean ± stddev, mean positive"
check "[[ \"\$(cell2 $tmp/md 4 | paste -sd/)\" == 'tg4/tg4 @ d16' ]]" "md: decode-vs-bandwidth table has the 2 tg rows"
check "cell2 $tmp/md 5 | positive && cell2 $tmp/md 6 | positive" "md: decode GB/s and memory read GB/s positive"
check "[[ \$(cell2 $tmp/md 7 | grep -Ec '^[0-9]+%\$') -eq 2 ]]" "md: fraction of the ceiling in percent"
check "grep -q 'memory read bandwidth measured in this run' $tmp/md" "md: says what the ceiling is"

# ---- every combination: 2 models x 2 thread counts x (pp8, tg2), CSV
"$bench" -m "$tmp/a.gguf" -m "$tmp/b.gguf" -p 8 -n 2 -t 1,2 -r 2 -o csv >"$tmp/csv" 2>"$tmp/csv.err"; rc=$?
check "[[ $rc -eq 0 ]] || { cat $tmp/csv.err; false; }" "imp-bench csv runs (exit $rc)"
check "[[ \"\$(head -1 $tmp/csv)\" == 'model,file,size_bytes,n_params,backend,threads,n_prompt,n_gen,n_depth,test,reps,avg_ts,stddev_ts,mem_read_gbs,decode_gbs,decode_frac' ]]" \
      "csv: header"
check "[[ \$(wc -l <$tmp/csv) -eq 9 ]]" "csv: 8 rows (2 models x 2 thread counts x 2 tests)"
if [[ -n "$py" ]]; then
    cat >"$tmp/check_csv.py" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
a, b = sys.argv[2], sys.argv[3]
want = [(f, t, test) for f in (a, b) for t in ("1", "2") for test in ("pp8", "tg2")]
got = [(r["file"], r["threads"], r["test"]) for r in rows]
assert got == want, got
for r in rows:
    tg = r["test"].startswith("tg")
    assert (int(r["n_prompt"]), int(r["n_gen"]), int(r["n_depth"])) == ((0, 2, 0) if tg else (8, 0, 0)), r
    assert r["backend"] == "cpu" and r["reps"] == "2", r
    for k in ("size_bytes", "n_params", "avg_ts", "mem_read_gbs") + (("decode_gbs", "decode_frac") if tg else ()):
        assert float(r[k]) > 0, (k, r)
    assert float(r["stddev_ts"]) >= 0, r
    if not tg:
        assert r["decode_gbs"] == "" and r["decode_frac"] == "", r
    else:
        assert abs(float(r["decode_gbs"]) - int(r["size_bytes"]) * float(r["avg_ts"]) / 1e9) < 1e-3 * float(r["decode_gbs"]) + 1e-3, r
sizes = {r["file"]: r["size_bytes"] for r in rows}
assert sizes[a] != sizes[b], sizes  # Q8_0 and F16: the rows are the models'
EOF
    check "$py $tmp/check_csv.py $tmp/csv $tmp/a.gguf $tmp/b.gguf" "csv: parses; rows in model, threads, test order; numbers positive; decode GB/s = bytes x t/s"
else
    echo "skip csv/json parse checks: python3 absent"
fi

# ---- JSON, with depth
"$bench" -m "$tmp/a.gguf" -p 8 -n 4 -d 16 -r 3 -t 1 -o json >"$tmp/json" 2>"$tmp/json.err"; rc=$?
check "[[ $rc -eq 0 ]] || { cat $tmp/json.err; false; }" "imp-bench json runs (exit $rc)"
if [[ -n "$py" ]]; then
    cat >"$tmp/check_json.py" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["test"] for r in rows] == ["pp8 @ d16", "tg4 @ d16"], rows
for r in rows:
    tg = r["n_gen"] > 0
    assert r["n_depth"] == 16 and r["reps"] == 3 and len(r["samples_ts"]) == 3, r
    assert all(x > 0 for x in r["samples_ts"]) and r["avg_ts"] > 0 and r["stddev_ts"] >= 0, r
    assert abs(sum(r["samples_ts"]) / 3 - r["avg_ts"]) <= 1e-4 * r["avg_ts"], r
    assert r["mem_read_gbs"] > 0, r
    assert (r["decode_gbs"] > 0 and r["decode_frac"] > 0) if tg else (r["decode_gbs"] is None and r["decode_frac"] is None), r
EOF
    check "$py $tmp/check_json.py $tmp/json" "json: parses; pp8 @ d16 and tg4 @ d16; 3 samples each, positive, mean matches"
fi

# ---- imp-cli --bench --bench-depth: the same rows, the context sized to depth + test length
"$cli" --model "$tmp/a.gguf" --bench --bench-pp 8 -n 4 --bench-reps 2 --bench-depth 16 -t 1 \
    --log-level info >"$tmp/cli" 2>"$tmp/cli.err"; rc=$?
check "[[ $rc -eq 0 ]] || { cat $tmp/cli.err; false; }" "imp-cli --bench --bench-depth runs (exit $rc)"
check "[[ \"\$(cell $tmp/cli 6 | paste -sd/)\" == 'pp8 @ d16/tg4 @ d16' ]]" "imp-cli: rows pp8 @ d16, tg4 @ d16"
check "cell $tmp/cli 7 | sed -n 's/ ± .*//p' | positive" "imp-cli: t/s positive"
check "[[ \"\$(cell2 $tmp/cli 4)\" == 'tg4 @ d16' ]] && cell2 $tmp/cli 5 | positive && cell2 $tmp/cli 6 | positive" \
      "imp-cli: decode GB/s against the measured bandwidth"
check "grep -q 'engine: cpu backend .* 24 tokens per sequence' $tmp/cli.err" "context holds depth + the longest test (16 + 8 = 24)"
"$cli" --model "$tmp/a.gguf" --bench --set bench.pp=8 --set bench.tg=4 --set bench.reps=1 --set bench.depth=5 -t 1 >"$tmp/cli2" 2>&1
check "[[ \"\$(cell $tmp/cli2 6 | paste -sd/)\" == 'pp8 @ d5/tg4 @ d5' ]]" "bench.depth as a configuration key"
printf '[bench]\ndepth = 3\npp = 4\ntg = 2\nreps = 1\n' >"$tmp/work/imp.conf"
"$bench" -m "$tmp/a.gguf" -t 1 >"$tmp/conf" 2>&1
check "[[ \"\$(cell $tmp/conf 6 | paste -sd/)\" == 'pp4 @ d3/tg2 @ d3' ]]" "imp-bench takes its defaults from imp.conf [bench]"
"$bench" -m "$tmp/a.gguf" -t 1 -p 6 -d 0 >"$tmp/conf2" 2>&1
check "[[ \"\$(cell $tmp/conf2 6 | paste -sd/)\" == 'pp6/tg2' ]]" "flags override imp.conf"
rm -f "$tmp/work/imp.conf"
"$cli" --model "$tmp/a.gguf" --bench --bench-pp 8 -n 2 --bench-reps 1 -t 1 >"$tmp/cli3" 2>&1
check "[[ \"\$(cell $tmp/cli3 6 | paste -sd/)\" == 'pp8/tg2' ]]" "depth 0: plain labels"

# ---- errors: bad flags exit 2 naming the flag, bad models exit 1 naming the file
bad() { # expected-substring, args...
    local want=$1; shift
    "$bench" "$@" >"$tmp/o" 2>"$tmp/e"; local rc=$?
    check "[[ $rc -eq 2 ]] && grep -qF -- '$want' $tmp/e && [[ ! -s $tmp/o ]]" "imp-bench $*: exit 2 ($rc), message names '$want'"
}
bad "-p" -m "$tmp/a.gguf" -p x
bad "-p" -m "$tmp/a.gguf" -p 8,,4
bad "-p" -m "$tmp/a.gguf" -p 65537
bad "-n" -m "$tmp/a.gguf" -n -1
bad "-d" -m "$tmp/a.gguf" -d 1x
bad "-r" -m "$tmp/a.gguf" -r 0
bad "-t" -m "$tmp/a.gguf" -t 513
bad "-o" -m "$tmp/a.gguf" -o xml
bad "--device" -m "$tmp/a.gguf" --device gpu
bad "--nope" -m "$tmp/a.gguf" --nope
bad "-p needs a value" -m "$tmp/a.gguf" -p
bad "give a model" -p 8
bad "every -p and -n value is 0" -m "$tmp/a.gguf" -p 0 -n 0
bad "at most 16777216" -m "$tmp/a.gguf" -p 8 -n 0 -d 16777215
"$bench" --help >"$tmp/o" 2>&1
check "[[ \$? -eq 0 ]] && grep -q -- '--n-depth' $tmp/o" "imp-bench --help: exit 0, lists -d"
"$bench" -m "$tmp/missing.gguf" -p 8 -n 0 >"$tmp/o" 2>"$tmp/e"; rc=$?
check "[[ $rc -eq 1 ]] && grep -q 'imp-bench: .*missing.gguf' $tmp/e && [[ ! -s $tmp/o ]]" "missing model: exit 1 naming the file"
head -c 1000 "$tmp/a.gguf" >"$tmp/trunc.gguf"
"$bench" -m "$tmp/trunc.gguf" -p 8 -n 0 -o json >"$tmp/o" 2>"$tmp/e"; rc=$?
check "[[ $rc -eq 1 ]] && grep -q 'trunc.gguf' $tmp/e" "truncated model: exit 1 naming the file"
check "[[ \"\$(cat $tmp/o)\" == '[]' ]]" "json stays a valid (empty) document when the model fails"
"$cli" --model "$tmp/a.gguf" --bench --bench-depth -1 >/dev/null 2>"$tmp/e"; rc=$?
check "[[ $rc -eq 2 ]] && grep -q -- '--bench-depth' $tmp/e" "imp-cli --bench-depth -1: exit 2 naming the flag"
"$cli" --model "$tmp/a.gguf" --bench --bench-depth x >/dev/null 2>"$tmp/e"; rc=$?
check "[[ $rc -eq 2 ]] && grep -q -- '--bench-depth' $tmp/e" "imp-cli --bench-depth x: exit 2 naming the flag"

[[ $fail -eq 0 ]] && echo "bench: all passed" || { echo "bench: $fail failed"; exit 1; }
