"""Which verl the integration runs on: verl 0.9.x, through its legacy trainer (``main_ppo_v0``, ``use_v1: false``).

verl 0.9's default trainer is V1, whose hooks never see the batch; LUFFY's per-batch work (``prefix_mask``,
grpo_split advantages, the luffy/* metrics, the batch dump) lives in ``RayPPOTrainer._update_actor`` of the
legacy path (docs/luffy_train.md, "Which verl trainer"). A verl without that path, or a config asking for V1,
is refused in one line before anything starts. Checked without importing verl (which loads torch), so that
the refusal is as quick as the config's other checks.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

from luffy_train.errors import ConfigError

SUPPORTED = (0, 9)  # major, minor
LEGACY_TRAINER = Path("trainer") / "main_ppo_v0.py"
FIX = ("luffy_train runs on verl's legacy trainer (main_ppo_v0, trainer.use_v1=false), verl 0.9.x; {found}; "
       "rebuild the trainer's environment with `bash scripts/setup.sh train`; see docs/luffy_train.md, "
       "'Which verl trainer'")


def installed_verl() -> tuple[str | None, Path | None]:
    """(the installed verl distribution's version, its package directory), either None when absent."""
    try:
        version = importlib.metadata.version("verl")
    except importlib.metadata.PackageNotFoundError:
        version = None
    spec = importlib.util.find_spec("verl")
    package = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    return version, package


def release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version string, or None when it does not start with them."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def check_verl(use_v1: bool = False) -> None:
    """Raise ConfigError (one line) unless verl 0.9.x with main_ppo_v0.py is installed and V1 is not asked for."""
    if use_v1:
        raise ConfigError(FIX.format(found="the config sets trainer.use_v1=true (verl's V1 trainer), which it "
                                           "does not support; set trainer.use_v1=false"))
    version, package = installed_verl()
    if version is None or package is None:
        raise ConfigError(FIX.format(found="found no verl in this environment"))
    if release(version) != SUPPORTED:
        raise ConfigError(FIX.format(found=f"found verl {version}"))
    if not (package / LEGACY_TRAINER).is_file():
        raise ConfigError(FIX.format(found=f"found verl {version} without verl/{LEGACY_TRAINER.as_posix()}"))


def check_config(cfg) -> None:
    """``check_verl`` for a composed config (its ``trainer.use_v1``)."""
    check_verl(bool(cfg.trainer.get("use_v1", False)))
