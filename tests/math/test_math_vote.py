"""Majority vote: equivalent answers count together; ties and grouping are deterministic."""

from __future__ import annotations

import itertools

import pytest

from luffy_math import majority_vote
from luffy_math.workers import GradingPool


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["1/3", "0.5", r"\frac{1}{2}", "1/3", r"\dfrac{1}{2}"], "0.5"),  # 3 halves beat 2 thirds
        (["7", "8"], "7"),  # tie: first seen wins
        (["8", "7"], "8"),
        (["8", "7", "7"], "7"),
        ([None, None], None),
        ([], None),
        ([None, "42", None], "42"),
        ([r"90^\circ", "90", "45", "45"], r"90^\circ"),  # 2-2 tie, the 90s were seen first
        (["142.0", "142", "141", "141", "141"], "141"),
        ([r"\text{Evelyn}", "Evelyn", "Bob"], r"\text{Evelyn}"),
    ],
)
def test_majority_vote(answers: list[str | None], expected: str | None) -> None:
    assert majority_vote(answers) == expected


def test_vote_over_every_order() -> None:
    """In each of the 120 orders the 2s (three texts, one class) beat the 3s (two), and the winner is the
    first 2 of that order as written; a tie goes to the class seen first; None never wins."""
    answers = ["2", "3", r"\frac{4}{2}", "3", "2.0"]
    for order in itertools.permutations(answers):
        assert majority_vote(list(order)) == next(a for a in order if a != "3"), order
    for order in itertools.permutations(["7", "8", None, None, None]):
        assert majority_vote(list(order)) == next(a for a in order if a is not None), order


def test_vote_in_pool(grading_pool: GradingPool) -> None:
    assert grading_pool.submit_vote(["0.5", "1/3", r"\frac{1}{2}"]).result(timeout=60) == "0.5"
    assert grading_pool.submit_vote([None]).result(timeout=60) is None
