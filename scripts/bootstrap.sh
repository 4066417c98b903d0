#!/usr/bin/env bash
# Installs what imp needs to build and test on Debian 12 (bookworm) / Ubuntu 24.04:
#   - Debian packages: compiler, cmake, python3 + venv, clang + libFuzzer runtime;
#   - a Python virtual environment in .venv with PyPI `gguf` + numpy (the independent reference
#     the tests compare our GGUF files and dequantization against).
# Run as root (or with sudo available). Without root it prints what to install and continues
# with what is already present. Safe to re-run: it installs only what is missing.
# The CUDA toolkit is optional (NVIDIA's packages); without nvcc imp builds CPU-only.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake git pkg-config python3 python3-venv python3-pip clang libclang-rt-14-dev libpcre2-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # libclang-rt-14-dev only exists where clang 14 is the default; don't fail without it.
        apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
            apt-get install -y -qq --no-install-recommends "${missing[@]/libclang-rt-14-dev/}"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "bootstrap: not root; please install: sudo apt-get install ${missing[*]}" >&2
    fi
fi

for tool in cc cmake python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bootstrap: '$tool' is still missing" >&2; exit 1; }
done

# Python reference packages (tests skip, saying so, when they are absent).
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || echo "bootstrap: could not create .venv (python3-venv missing?)" >&2
fi
if [ -x .venv/bin/python ]; then
    # gguf + numpy: GGUF and dequantization reference; tokenizers + sentencepiece (+ protobuf):
    # independent tokenizer implementations built from the same GGUF vocabularies; jinja2: renders
    # the models' own chat templates.
    refpkgs=(gguf numpy tokenizers sentencepiece protobuf jinja2)
    if ! .venv/bin/python -c "import gguf, numpy, tokenizers, sentencepiece, google.protobuf, jinja2" 2>/dev/null; then
        .venv/bin/python -m pip install -q --disable-pip-version-check "${refpkgs[@]}" ||
            echo "bootstrap: pip install ${refpkgs[*]} failed; reference tests will be skipped" >&2
    fi
fi
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    echo "bootstrap: CUDA toolkit found: the CUDA backend will be built"
else
    echo "bootstrap: no CUDA toolkit: building the CPU-only engine"
fi
echo "bootstrap: ok"
