"""Grading through luffy_math only: every sample gets one label per grader, computed in luffy_math's pool."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

from luffy_math import Grade, GradingPool, split_reasoning

GRADERS = ("luffy", "math_verify")  # "luffy" = LUFFY's reported grader (OAT's boxed grader); both are recorded


def grade_to_json(grade: Grade) -> dict[str, Any]:
    return asdict(grade)


def graded_text(response: str) -> str:
    """What LUFFY grades: the text after the first </think> when the model closed its thinking, else all of it."""
    return split_reasoning(response)[1]


def submit_all(pool: GradingPool, response: str, gold: str | list[str]) -> dict[str, Future[Grade]]:
    """One future per grader for one sample (one worker task for both)."""
    return pool.submit_modes(graded_text(response), gold, GRADERS)


def collect(futures: dict[str, Future[Grade]]) -> dict[str, dict[str, Any] | None]:
    """Grades as JSON; a grader that crashed leaves None, which `score` fills in later."""
    out: dict[str, dict[str, Any] | None] = {}
    for mode, future in futures.items():
        try:
            out[mode] = grade_to_json(future.result())
        except Exception:
            out[mode] = None
    return out


def grader_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("luffy", "math-verify", "latex2sympy2_extended", "sympy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions
