"""Labels of both modes on the cases the issue names, and the two Math-Verify version traps."""

from __future__ import annotations

import pytest

from luffy_math import Grade, grade

# (response, gold, label in "luffy" mode, label in "math_verify" mode)
CASES = [
    (r"The answer is $\boxed{142}$.", "142.0", True, True),  # AMC golds are floats written as strings
    (r"$\boxed{142.0}$", "142", True, True),
    (r"$\boxed{25}$", "025", True, True),  # one AIME gold has a leading zero
    (r"$\boxed{025}$", "25", True, True),
    (r"$\boxed{90}$", r"90^\circ", True, True),
    (r"$\boxed{90^\circ}$", "90", True, True),
    (r"$\boxed{Evelyn}$", r"\text{Evelyn}", True, True),
    (r"$\boxed{3, 2}$", "2, 3", True, True),  # unordered answer lists
    (r"$\boxed{x=2, y=1}$", "y=1, x=2", True, True),
    (r"$\boxed{(2, 1)}$", "(1, 2)", False, False),  # an ordered pair is not
    (r"$\boxed{4.5\times10^{33}}$", "4.5e33", False, False),  # both read 4.5e33 as 4.5*e*33 (Minerva golds)
    (r"$\boxed{4.5e33}$", "4.5e33", True, True),
    (r"$\boxed{0.5}$", r"50\%", True, True),
    (r"$\boxed{50\%}$", "0.5", True, True),
    ("so the answer is 42.", "42", False, True),  # LUFFY needs a box; Math-Verify reads plain text
    (r"\boxed{840}, but let me check. **Final Answer** \boxed{840}", "840", True, True),  # 0.7.0: 840840
    (r"\boxed{41} wait no \boxed{42}", "42", True, False),  # 0.8+ merges the two boxes into {41, 42}
    (r"\boxed{41} wait no \boxed{42}", "41", False, False),
    (r"$\boxed{5}$", "5 m", True, True),  # units dropped
    (r"$\boxed{1024}$", "2^{10}", True, True),
    (r"$\boxed{4.2e1}$", "42", True, False),  # LUFFY's sympy step reads e-notation, Math-Verify does not
    (r"$\boxed{\frac{\sqrt{2}}{2}}$", r"\frac{1}{\sqrt 2}", True, True),
    (r"$\boxed{\dfrac{3}{4}}$", "3/4", True, True),
    (r"$\boxed{43}$", "42", False, False),
    (r"The answer is $\fbox{42}$", "42", False, True),  # LUFFY does not read \fbox
]


@pytest.mark.parametrize(("response", "gold", "luffy", "math_verify"), CASES)
def test_both_modes(response: str, gold: str, luffy: bool, math_verify: bool) -> None:
    assert grade(response, gold, mode="luffy").correct is luffy
    assert grade(response, gold, mode="math_verify").correct is math_verify


def test_luffy_grade_fields() -> None:
    assert grade(r"so \boxed{42}", "42") == Grade(correct=True, extracted="42", decided_by="mathd",
                                                  formatted=True, timed_out=False)
    assert grade(r"$\boxed{142}$", "142.0").decided_by == "sympy"
    assert grade(r"$\boxed{0.5}$", r"50\%").decided_by == "math_verify"
    assert grade(r"$\boxed{43}$", "42") == Grade(correct=False, extracted="43", decided_by="no_match",
                                                 formatted=True, timed_out=False)
    assert grade("so the answer is 42.", "42") == Grade(correct=False, extracted=None, decided_by="unformatted",
                                                        formatted=False, timed_out=False)


def test_math_verify_grade_fields() -> None:
    right = grade("so the answer is 42.", "42", mode="math_verify")
    assert (right.correct, right.extracted, right.decided_by, right.formatted) == (True, "42", "math_verify", True)
    nothing = grade("I do not know.", "42", mode="math_verify")
    assert (nothing.correct, nothing.formatted, nothing.decided_by) == (False, False, "unformatted")


@pytest.mark.parametrize("mode", ["luffy", "math_verify"])
def test_gold_list_any_matches(mode: str) -> None:
    golds = ["8.7e8", r"8.7 \times 10^{8}"]
    assert grade(r"$\boxed{8.7 \times 10^{8}}$", golds, mode=mode).correct
    assert not grade(r"$\boxed{8.6 \times 10^{8}}$", golds, mode=mode).correct


def test_boxed_gold_is_unboxed_first() -> None:
    assert grade(r"$\boxed{3}$", r"The solution gives \boxed{3}.").correct


def test_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown grading mode 'exact'"):
        grade(r"\boxed{1}", "1", mode="exact")  # type: ignore[arg-type]


def test_remembered_verdicts_are_reused_but_a_timeout_is_not() -> None:
    from luffy_math.grader import _remembered_luffy_match

    _remembered_luffy_match.cache_clear()
    response, gold = r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{\sqrt{2}}{2}"
    assert grade(response, gold, timeout=1e-4).timed_out  # the sympy step needs milliseconds
    assert _remembered_luffy_match.cache_info().currsize == 0
    first = grade(response, gold)
    assert first.correct and first.decided_by == "sympy"
    assert grade("other words, same box: " + response, gold) == first
    assert _remembered_luffy_match.cache_info().hits == 1
    long_answer = "1+" * 300 + "1"  # too long to be remembered
    grade(rf"\boxed{{{long_answer}}}", "601")
    assert _remembered_luffy_match.cache_info().currsize == 1
