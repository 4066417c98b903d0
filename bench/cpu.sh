#!/usr/bin/env bash
# CPU benchmark of the real test models: llama-bench-style pp512 / tg128 rows with the memory
# read bandwidth measured in the same run, and perplexity on GPL-3 with 512-token windows.
#   bench/cpu.sh [BUILD_DIR] [THREADS]      (models from scripts/get-models.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-2}
text=/usr/share/common-licenses/GPL-3
for m in models/SmolLM2-135M-Instruct.Q4_1.gguf models/gemma-3-270m-q4_k_m.gguf; do
    [ -f "$m" ] || { echo "skip $m (absent)"; continue; }
    echo "== $m, $threads threads"
    "$build/imp-cli" --model "$m" --quiet --bench -t "$threads" --bench-pp 512 -n 128 --bench-reps 5
    "$build/imp-cli" --model "$m" --quiet --perplexity "$text" --ctx 512 -t "$threads" | tail -1
done
