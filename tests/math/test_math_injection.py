"""Untrusted answers are never run as code (sympy's parse_expr would eval them unguarded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from luffy_math import grade, majority_vote
from luffy_math.safe_sympy import equal_under_sympy, safe_parse, tokens_are_safe
from luffy_math.workers import GradingPool


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


# ---- what the sandbox must still let through (issue 11: 7 of LUFFY's labels were lost here) ---------------


@pytest.mark.parametrize(("text", "expected"), [
    # split_symbols writes Number for the digits it splits off a name: the imaginary unit written first
    ("6-i5", 6 - 5 * sympy.Symbol("i")), ("i5+3", 5 * sympy.Symbol("i") + 3), ("x2", 2 * sympy.Symbol("x")),
    ("3i5", 15 * sympy.Symbol("i")), ("ab12", 12 * sympy.Symbol("a") * sympy.Symbol("b")),
    ("2j", 2 * sympy.I),  # auto_number writes I for a Python imaginary literal
    ("0.5", sympy.Rational(1, 2)), ("1/3", sympy.Rational(1, 3)), ("2.5e3", 2500),  # Integer, Float, Rational
    ("5!", 120), ("5!!", 15),  # factorial, factorial2
    ("f(2)", 2 * sympy.Symbol("f")),  # auto_symbol's Function, then implicit multiplication (as in LUFFY)
])
def test_every_name_the_parser_writes_is_in_the_namespace(text: str, expected: sympy.Expr) -> None:
    assert sympy.simplify(safe_parse(text) - expected) == 0


@pytest.mark.parametrize("name", ["e_1", "x_2", "a_n", "x_10", "v_0", "x_1_2", "ab_1"])
def test_subscripted_names_are_symbols(name: str) -> None:
    assert tokens_are_safe(f"{name}+1")
    assert safe_parse(f"{name}+1") == sympy.Symbol(name) + 1
    assert equal_under_sympy(f"{name}+2*{name}", f"3*{name}")


@pytest.mark.parametrize("name", ["_x", "x_", "x__1", "__x__", "__import__", "_", "X_1", "x_A"])
def test_underscores_that_are_not_subscripts_are_refused(name: str) -> None:
    assert not tokens_are_safe(f"{name}+1")


@pytest.mark.parametrize(("given", "gold"), [
    ("6 - i 5", "6-5i"), ("-i 5 + 6", "6-5i"), ("i3+2", "2+3i"),  # the unit first
    ("E_{2}+E_{1}", "E_{1}+E_{2}"), ("a_{n}+1", "1+a_{n}"), ("2x_{1}", "x_{1}+x_{1}"),  # subscripts, reordered
])
def test_luffy_mode_grades_these_as_luffy_does(given: str, gold: str) -> None:
    graded = grade(f"\\boxed{{{given}}}", gold)
    assert graded.correct, (given, gold, graded)
