#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up both environments, then run pytest in each.
# The serving environment runs everything but tests/train; the trainer environment runs tests/train.
# The two sessions run side by side: most of each one's time is spent waiting on engines, servers and
# subprocesses it started, so together they take about as long as the longer one (the trainer's output is
# printed when both are done).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
.venv/bin/ruff check .
PYTHONPATH=. .venv/bin/lint-imports --no-cache --no-logo  # the layers (pyproject.toml's [tool.importlinter])
train_log="$(mktemp "${TMPDIR:-/tmp}/luffy-train-tests.XXXXXX")"
status=0
SECONDS=0
.venv-train/bin/python -m pytest -p no:cacheprovider --durations=15 tests/train "$@" >"$train_log" 2>&1 &
train_pid=$!
trap 'kill "$train_pid" 2>/dev/null || true; rm -f "$train_log"' EXIT
.venv/bin/python -m pytest -p no:cacheprovider --durations=25 --ignore=tests/train "$@" || status=$?
echo "== serving environment's tests done after ${SECONDS}s; the trainer environment's (tests/train):"
wait "$train_pid" || status=$?
cat "$train_log"
echo "== all tests done after ${SECONDS}s"
exit $status
