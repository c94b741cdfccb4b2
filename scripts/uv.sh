# shellcheck shell=bash
# Sourced by setup.sh and lock.sh: the uv they both use (one pinned version, installed from PyPI on first use
# into .cache/), and where the CPU torch wheel comes from.

UV_VERSION=0.13.8
UV=".cache/uv-$UV_VERSION/bin/uv"
PY="${PYTHON:-python3}"

ensure_uv() {
  [ -x "$UV" ] && return
  PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check --target ".cache/uv-$UV_VERSION" \
    "uv==$UV_VERSION" 2>&1 | sed '/^WARNING: Location/d'
  [ -x "$UV" ]
}

# uv options for torch 2.13.0+cpu: pip's configured find-links (where these machines keep the wheel) and
# TORCH_INDEX_URL (PyTorch's CPU wheel index elsewhere). Locks name the version; these say where it lies.
torch_sources() {
  local link links
  links="${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true)"
  for link in $links; do echo "--find-links=$link"; done
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    # The locks pin every version, so taking each from whichever index has it cannot pick another one.
    echo "--extra-index-url=$TORCH_INDEX_URL"
    echo "--index-strategy=unsafe-best-match"
  fi
}
