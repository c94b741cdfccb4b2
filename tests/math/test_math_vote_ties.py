"""The one tie rule (luffy_math.vote): a vote says when several answers share the most votes, gives every
answer's count, and still takes the tied answer seen first; the pool counts the workers it had to replace."""

from __future__ import annotations

import time

import pytest

from luffy_math import majority_vote
from luffy_math.vote import NO_ANSWER, TIE, Majority, exact_groups, majority, tally
from luffy_math.workers import GradingPool


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["24", "42"], Majority("24", TIE, {"24": 1, "42": 1})),  # the 1-1 split
        (["42", "24"], Majority("42", TIE, {"42": 1, "24": 1})),
        (["8", "7", "7"], Majority("7", None, {"7": 2, "8": 1})),  # a clear winner, most votes first
        # equivalent answers count together: 0.5 and 1/2 (2) tie with the two 3s, and were seen first
        (["0.5", "3", r"\frac{1}{2}", "3"], Majority("0.5", TIE, {"0.5": 2, "3": 2})),
        (["1", "2", "2", "3", "3", "4"], Majority("2", TIE, {"2": 2, "3": 2, "1": 1, "4": 1})),
        (["5", "6", "6", "7"], Majority("6", None, {"6": 2, "5": 1, "7": 1})),  # a plurality is no tie
        ([None, "9", None], Majority("9", None, {"9": 1})),  # None does not vote
        ([None, None], Majority(None, NO_ANSWER, {})),
        ([], Majority(None, NO_ANSWER, {})),
    ],
)
def test_majority_says_ties_and_counts(answers: list[str | None], expected: Majority) -> None:
    vote = majority(answers)
    assert vote == expected
    assert list(vote.counts) == list(expected.counts)  # the order is part of the answer
    assert vote.answer == majority_vote(answers)  # the same rule as the plain vote


def test_tied_lists_only_the_answers_sharing_the_top_count() -> None:
    assert majority(["1", "2", "2", "3", "3", "4"]).tied == {"2": 2, "3": 2}
    assert majority(["5", "6", "6"]).tied == {}
    assert tally(exact_groups(["a", "b", "b", "a"])) == Majority("a", TIE, {"a": 2, "b": 2})


def test_the_pool_counts_the_workers_it_replaced() -> None:
    """A task past its bound is killed (timeout), a task nobody waits for with a deadline is killed (dropped);
    each replaced worker is counted by its reason."""
    with GradingPool(workers=1, timeout=0.3) as pool:
        assert set(pool.restarts().values()) == {0}
        assert pool.submit(time.sleep, 30, on_timeout=lambda: "killed").result(timeout=60) == "killed"
        running = pool.submit(time.sleep, 30, deadline=time.monotonic() + 60)
        time.sleep(1.0)  # let it start in the (fresh) worker
        running.cancel()
        deadline = time.monotonic() + 10
        while pool.restarts()["dropped"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        restarts = pool.restarts()
        assert restarts["timeout"] == 1 and restarts["dropped"] == 1, restarts
        assert pool.submit_grade("\\boxed{1}", "1").result(timeout=60).correct  # the new worker grades
