"""Where answers are found: the last \\boxed{}, \\fbox{}, and the </think> split."""

from __future__ import annotations

import pytest

from luffy_math import extract_answer, split_reasoning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"The answer is $\boxed{42}$.", "42"),
        (r"\boxed{41} wait no \boxed{42}", "42"),  # the last box wins, never a merge of both
        (r"\boxed{840} ... **Final Answer** \boxed{840}", "840"),  # never 840840
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),  # nested braces
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\fbox{7}", "7"),
        (r"\fbox{7} and \boxed{8}", "8"),
        (r"\boxed{8} and \fbox{7}", "8"),  # \boxed takes precedence, as in LUFFY's extractor
        ("so the answer is 42.", None),
        (r"\boxed{5", None),  # cut off: unbalanced
        (r"\boxed{3} then a cut-off \boxed{4", None),  # only the last box counts
        (r"\boxed 5", None),
        (r"\boxed{}", ""),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_long_text_is_linear() -> None:
    text = "x" * 200_000 + r"\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}"
    assert extract_answer(text) == "{" * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nLet me think.\n</think>\n\nThe answer is 42.", ("\nLet me think.\n", "\n\nThe answer is 42.")),
        ("Let me think.</think>Answer", ("Let me think.", "Answer")),  # prompt ended with <think>
        ("a</think>b</think>c", ("a", "b</think>c")),  # split at the first tag only
        ("no tags here", (None, "no tags here")),
        ("<think>unfinished thought", (None, "<think>unfinished thought")),
        ("  <think>x</think>y", ("x", "y")),
    ],
)
def test_split_reasoning(text: str, expected: tuple[str | None, str]) -> None:
    assert split_reasoning(text) == expected
