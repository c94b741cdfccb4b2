"""Grading through luffy_math only: every sample gets one label per grader, computed in luffy_math's pool.

The graders are luffy_math's modes. "luffy_exact" is graded only where the environment with LUFFY's pinned
libraries exists (``.venv-exact``, built by ``scripts/setup.sh``; see :mod:`luffy_math.pins`); elsewhere a
sample carries the other two labels, and metrics, reports and comparisons work over the labels recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from luffy_math import Grade, answer_part, available_modes
from luffy_math.grader import MODE_NOTES, MODES
from luffy_math.workers import GradingPool
from luffy_util.versions import installed_versions, versions_in

# Every grader a sample may carry: luffy_math's modes, in report order. "luffy" (LUFFY's reported grader) is
# always graded.
GRADERS = MODES
GRADER_NOTES = MODE_NOTES
# The libraries of this environment that the "luffy" and "math_verify" labels depend on.
LIBRARIES = ("luffy", "math-verify", "latex2sympy2_extended", "antlr4-python3-runtime", "sympy")
NOT_AVAILABLE = "not available"


def graders_here() -> tuple[str, ...]:
    """The graders this machine can grade, in GRADERS order: "luffy_exact" only where its environment exists."""
    modes = available_modes()
    return tuple(grader for grader in GRADERS if grader in modes)


def grade_to_json(grade: Grade) -> dict[str, Any]:
    return asdict(grade)


def submit_all(pool: GradingPool, response: str, gold: str | list[str],
               graders: Sequence[str] | None = None) -> dict[str, Future[Grade]]:
    """One future per grader (default: :func:`graders_here`) for one sample; the pool grades the graders of one
    environment in one worker task ("luffy_exact" goes to the workers on LUFFY's pins)."""
    return pool.submit_modes(answer_part(response), gold, tuple(graders or graders_here()))


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
    from luffy_math.pins import exact_python, luffy_pins, under_luffy_pins

    versions: dict[str, Any] = installed_versions(LIBRARIES)
    if under_luffy_pins():
        versions["luffy_exact"] = installed_versions(luffy_pins())
    else:
        python = exact_python()
        versions["luffy_exact"] = ((versions_in(python, luffy_pins()) or f"unknown ({python} did not say)")
                                   if python else NOT_AVAILABLE)
    return versions
