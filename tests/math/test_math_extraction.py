"""Where answers are found (luffy_math.answer): the last \\boxed{} (never \\fbox). The graded text (the
</think> split) is tested in test_math_thinking.py."""

from __future__ import annotations

import pytest

from luffy_math import as_boxed, boxed_answer, grade, grade_answer
from luffy_math.answer import last_boxed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"The answer is $\boxed{42}$.", "42"),
        (r"\boxed{41} wait no \boxed{42}", "42"),  # the last box wins, never a merge of both
        (r"\boxed{840} ... **Final Answer** \boxed{840}", "840"),  # never 840840
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),  # nested braces
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\fbox{7}", None),  # LUFFY's grader does not read \fbox, so neither does the answer
        (r"\fbox{7} and \boxed{8}", "8"),
        (r"\boxed{8} and \fbox{7}", "8"),
        ("so the answer is 42.", None),
        (r"\boxed{5", None),  # cut off: unbalanced
        (r"\boxed{3} then a cut-off \boxed{4", None),  # only the last box counts
        (r"\boxed 5", None),
        (r"\boxed{}", ""),
    ],
)
def test_boxed_answer(text: str, expected: str | None) -> None:
    assert boxed_answer(text) == expected


def test_the_answer_is_what_the_luffy_grade_reads() -> None:
    """One extraction: where there is no answer there is no formatted grade, and the other way round."""
    for text in (r"\fbox{42}", r"\boxed{42}", r"\boxed{4", "42", r"\boxed{41} \fbox{42}"):
        graded = grade(text, "42")
        assert graded.extracted == boxed_answer(text) and graded.formatted is (boxed_answer(text) is not None)


def test_fbox_only_where_asked() -> None:
    """Reference solutions that box with \\fbox (Minerva's golds) are read with allow_fbox."""
    assert last_boxed(r"so \fbox{7}", allow_fbox=True) == "7"
    assert last_boxed(r"\fbox{7} and \boxed{8}", allow_fbox=True) == "8"  # \boxed first, as before
    assert last_boxed(r"so \fbox{7}") is None


def test_boxed_answer_long_text_is_linear() -> None:
    text = "x" * 200_000 + r"\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}"
    assert boxed_answer(text) == "{" * 5000 + "1" + "}" * 5000


def test_bare_answers_are_graded_boxed() -> None:
    assert as_boxed(r"\frac{1}{2}") == r"\boxed{\frac{1}{2}}"
    assert grade_answer("0.5", r"\frac{1}{2}") == grade(r"\boxed{0.5}", r"\frac{1}{2}")
    assert grade_answer("42", "42", mode="math_verify").correct
    assert not grade_answer("41", "42").correct
