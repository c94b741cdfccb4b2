"""Untrusted answers are never run as code (sympy's parse_expr would eval them unguarded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from luffy_math import GradingPool, grade, majority_vote
from luffy_math.safe_sympy import equal_under_sympy, safe_parse, tokens_are_safe


def _attacks(marker: Path) -> list[str]:
    command = f"touch {marker}"
    return [
        f"\\boxed{{__import__('os').system('{command}')}}",
        f"\\boxed{{(__import__(\"os\").system(\"{command}\"))}}",
        f"$\\boxed{{eval(\"__import__('os').system('{command}')\")}}$",
        f"\\boxed{{[c for c in ().__class__.__base__.__subclasses__()]}} __import__('os').system('{command}')",
        f"so the answer is __import__('os').system('{command}')",
        f"\\boxed{{\\text{{__import__('os').system('{command}')}}}}",
    ]


@pytest.mark.parametrize("mode", ["luffy", "math_verify"])
def test_injection_does_nothing_in_process(tmp_path: Path, mode: str) -> None:
    marker = tmp_path / "pwned"
    for attack in _attacks(marker):
        result = grade(attack, "0", mode=mode)  # type: ignore[arg-type]
        assert not result.correct
        result = grade(r"\boxed{0}", attack, mode=mode)  # the gold side is parsed too
        assert not marker.exists(), attack
    assert majority_vote([a.split("{", 1)[-1] for a in _attacks(marker)] * 2) is not None
    assert not marker.exists()


def test_injection_does_nothing_in_workers(tmp_path: Path, grading_pool: GradingPool) -> None:
    marker = tmp_path / "pwned"
    futures = [grading_pool.submit_grade(attack, "0", mode)
               for attack in _attacks(marker) for mode in ("luffy", "math_verify")]
    assert not any(future.result(timeout=120).correct for future in futures)
    assert not marker.exists()


def test_parser_accepts_arithmetic_only() -> None:
    assert tokens_are_safe("(3*sqrt(2)+pi/4)**2-x!")
    for text in ["__import__('os')", "().__class__", "x.y", "'a'", "lambda:1", "[1]", "a if b else c", "f(x=1)"]:
        assert not tokens_are_safe(text), text
        with pytest.raises(ValueError):
            safe_parse(text)
    # Names of Python builtins are plain letters here (split into symbols): nothing from Python is in scope.
    assert safe_parse("open") == sympy.Mul(*sympy.symbols("o p e n"))
    assert isinstance(safe_parse("eval(2)"), sympy.Basic)
    assert safe_parse("2pi") == 2 * sympy.pi
    assert equal_under_sympy("sqrt(2)/2", "1/sqrt(2)")
    assert not equal_under_sympy("__import__('os')", "1")
