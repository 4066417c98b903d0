# Sourced by the tool tests (tests/tools/*.sh): strict mode, a scratch folder $tmp removed at
# exit, a failure count $fail and `check CMD LABEL` (runs CMD, prints ok/FAIL with LABEL).
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); else echo "ok   $2"; fi; }
# A scratch HOME and working directory (no user or IMP_CONFIG configuration is read).
scratch_home() {
    export HOME="$tmp/home"
    unset IMP_CONFIG
    mkdir -p "$HOME" "$tmp/work"
    cd "$tmp/work" || exit 1
}
