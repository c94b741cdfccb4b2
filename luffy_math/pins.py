"""LUFFY's grading libraries and the environment that has them.

LUFFY graded under math-verify 0.6.0, latex2sympy2_extended 1.0.9, sympy 1.13.3 and ANTLR 4.9.3
(``luffy_pins.txt``); luffy_math's own environments run newer versions, which label some answers otherwise.
The "luffy_exact" mode therefore grades in workers started with the interpreter of an environment holding
exactly those pins (``.venv-exact`` beside the source tree, built by ``scripts/setup.sh``, or the
interpreter named by ``LUFFY_EXACT_PYTHON``); inside that environment it is the "luffy" pipeline itself.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from luffy_util.versions import installed_versions

PINS_FILE = Path(__file__).with_name("luffy_pins.txt")
EXACT_PYTHON_ENV = "LUFFY_EXACT_PYTHON"
EXACT_VENV = ".venv-exact"


class ExactEnvironmentMissing(RuntimeError):
    """The "luffy_exact" mode was asked for where no environment with LUFFY's pins exists."""


def luffy_pins() -> dict[str, str]:
    """Package name -> version, from ``luffy_pins.txt``."""
    pins = {}
    for line in PINS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[name.strip()] = pinned.strip()
    return pins


@functools.cache
def under_luffy_pins() -> bool:
    """True when this interpreter's grading libraries are exactly LUFFY's."""
    pins = luffy_pins()
    return installed_versions(list(pins)) == pins


def exact_python() -> str | None:
    """The interpreter of the environment with LUFFY's pins, or None if there is none."""
    named = os.environ.get(EXACT_PYTHON_ENV)
    if named:
        return named if os.access(named, os.X_OK) else None
    candidate = Path(__file__).resolve().parents[1] / EXACT_VENV / "bin" / "python"
    return str(candidate) if os.access(candidate, os.X_OK) else None


def exact_available() -> bool:
    return under_luffy_pins() or exact_python() is not None


def require_exact_python() -> str:
    found = exact_python()
    if found is None:
        where = os.environ.get(EXACT_PYTHON_ENV) or str(Path(__file__).resolve().parents[1] / EXACT_VENV)
        raise ExactEnvironmentMissing(
            f"grading mode 'luffy_exact' needs an environment with LUFFY's grading libraries ({where} not found); "
            f"build it with `bash scripts/setup.sh exact` or point {EXACT_PYTHON_ENV} at its python")
    return found


def same_interpreter(python: str) -> bool:
    """True when ``python`` belongs to this process's own environment (``<prefix>/bin/python``)."""
    return Path(python).absolute().parent.parent.resolve() == Path(sys.prefix).resolve()


def no_math_verify_alarms() -> None:
    """Make Math-Verify's own SIGALRM timeouts pass-throughs where a None timeout cannot switch them off.

    Math-Verify 0.6.0 (LUFFY's pin) arms ``signal.alarm(seconds)`` around every parse and verify and ends
    with ``alarm(0)``, which would cancel luffy_math's own (ITIMER_REAL) deadlines; from 0.6.2 on a None
    timeout turns the alarm off, which is what luffy_math passes. Bounds come from :mod:`luffy_math.deadline`.
    """
    import math_verify.grader
    import math_verify.parser

    def without_alarm(timeout_seconds: object = None) -> object:
        return lambda func: func

    for module in (math_verify.grader, math_verify.parser):
        if hasattr(module, "timeout"):
            module.timeout = without_alarm  # type: ignore[attr-defined]
