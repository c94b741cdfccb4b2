"""Grading through luffy_math only: every sample gets one label per grader, computed in luffy_math's pool.

The graders are luffy_math's modes. "luffy_exact" is graded only where the environment with LUFFY's pinned
libraries exists (``.venv-exact``, built by ``scripts/setup.sh``; see :mod:`luffy_math.pins`); elsewhere a
sample carries the other two labels, and metrics, reports and comparisons work over the labels recorded.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from luffy_math import Grade, GradingPool, available_modes, split_reasoning

# Every grader a sample may carry, in report order. "luffy" (LUFFY's reported grader) is always graded.
GRADERS = ("luffy", "luffy_exact", "math_verify")
GRADER_NOTES = {
    "luffy": "LUFFY's reported grader (OAT boxed grader)",
    "luffy_exact": "LUFFY's grader under LUFFY's pinned libraries",
    "math_verify": "Math-Verify",
}
# The libraries of this environment that the "luffy" and "math_verify" labels depend on.
LIBRARIES = ("luffy", "math-verify", "latex2sympy2_extended", "antlr4-python3-runtime", "sympy")
NOT_AVAILABLE = "not available"


def graders_here() -> tuple[str, ...]:
    """The graders this machine can grade, in GRADERS order: "luffy_exact" only where its environment exists."""
    modes = available_modes()
    return tuple(grader for grader in GRADERS if grader in modes)


def grade_to_json(grade: Grade) -> dict[str, Any]:
    return asdict(grade)


def graded_text(response: str) -> str:
    """What LUFFY grades: the text after the first </think> when the model closed its thinking, else all of it."""
    return split_reasoning(response)[1]


def submit_all(pool: GradingPool, response: str, gold: str | list[str],
               graders: Sequence[str] | None = None) -> dict[str, Future[Grade]]:
    """One future per grader (default: :func:`graders_here`) for one sample; the pool grades the graders of one
    environment in one worker task ("luffy_exact" goes to the workers on LUFFY's pins)."""
    return pool.submit_modes(graded_text(response), gold, tuple(graders or graders_here()))


def collect(futures: dict[str, Future[Grade]]) -> dict[str, dict[str, Any] | None]:
    """Grades as JSON; a grader that crashed leaves None, which `score` fills in later."""
    out: dict[str, dict[str, Any] | None] = {}
    for mode, future in futures.items():
        try:
            out[mode] = grade_to_json(future.result())
        except Exception:
            out[mode] = None
    return out


def grader_versions() -> dict[str, Any]:
    """This environment's grading libraries (``LIBRARIES``, package -> version), and under "luffy_exact" the
    versions installed in the environment that grades that mode (package -> version), or "not available"."""
    from importlib.metadata import PackageNotFoundError, version

    from luffy_math.pins import exact_python, installed_versions, luffy_pins, under_luffy_pins

    versions: dict[str, Any] = {}
    for package in LIBRARIES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    if under_luffy_pins():
        versions["luffy_exact"] = installed_versions(list(luffy_pins()))
    else:
        python = exact_python()
        versions["luffy_exact"] = exact_versions(python, tuple(luffy_pins())) if python else NOT_AVAILABLE
    return versions


_VERSIONS_SCRIPT = """
import json, sys
from importlib.metadata import PackageNotFoundError, version
found = {}
for package in sys.argv[1:]:
    try:
        found[package] = version(package)
    except PackageNotFoundError:
        found[package] = "not installed"
print(json.dumps(found))
"""


@functools.lru_cache(maxsize=8)
def exact_versions(python: str, packages: tuple[str, ...]) -> dict[str, str] | str:
    """The versions of ``packages`` installed for the interpreter ``python`` (asked once per process)."""
    try:
        done = subprocess.run([python, "-c", _VERSIONS_SCRIPT, *packages], capture_output=True, text=True,
                              timeout=60, check=True)
        found = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return f"unknown ({python} did not say)"
    return {package: str(found.get(package, "not installed")) for package in packages}
