"""The process launcher for test fixtures (luffy_util.processes), run from the repository's root."""

from __future__ import annotations

import functools
from pathlib import Path

from luffy_util.processes import LaunchError, free_port, status_of, stop, tail
from luffy_util.processes import launch as _launch

REPO = Path(__file__).resolve().parents[1]

launch = functools.partial(_launch, cwd=REPO)

__all__ = ["REPO", "LaunchError", "free_port", "launch", "status_of", "stop", "tail"]
