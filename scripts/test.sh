#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up both environments, then run pytest in each.
# The serving environment runs everything but tests/train; the trainer environment runs tests/train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
.venv/bin/ruff check .
status=0
.venv/bin/python -m pytest -p no:cacheprovider --durations=25 --ignore=tests/train "$@" || status=$?
.venv-train/bin/python -m pytest -p no:cacheprovider --durations=15 tests/train "$@" || status=$?
exit $status
