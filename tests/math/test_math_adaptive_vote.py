"""The adaptive vote's stopping rule (Adaptive-Consistency's Beta criterion) against hand-computed cases."""

from __future__ import annotations

import itertools
from fractions import Fraction

import mpmath
import pytest

from luffy_math import majority_vote
from luffy_math.vote import (
    fewest_deciding,
    leader,
    leader_probability,
    samples_used,
    settled,
    vote_groups,
    vote_labels,
)


@pytest.mark.parametrize(("first", "second", "expected"), [
    (0, 0, Fraction(1, 2)),  # Beta(1, 1): a coin
    (1, 0, Fraction(3, 4)),  # Beta(2, 1): P(X > 1/2) = 1 - 1/4
    (4, 0, Fraction(31, 32)),  # Beta(5, 1): 1 - 2^-5
    (3, 1, Fraction(13, 16)),  # Beta(4, 2): P(Bin(5, 1/2) <= 3) = 26/32
    (2, 2, Fraction(1, 2)),  # a tie stays a coin
    (1, 3, Fraction(3, 16)),  # the symmetric case of (3, 1)
    (5, 2, Fraction(219, 256)),  # P(Bin(8, 1/2) <= 5) = (1 + 8 + 28 + 56 + 70 + 56) / 256
])
def test_leader_probability_by_hand(first, second, expected):
    assert leader_probability(first, second) == pytest.approx(float(expected), abs=1e-15)


def test_leader_probability_is_the_beta_tail():
    """Against mpmath's regularized incomplete Beta function: 1 - I_{1/2}(first + 1, second + 1)."""
    for first, second in itertools.product(range(0, 40, 3), range(0, 40, 5)):
        expected = 1 - mpmath.betainc(first + 1, second + 1, 0, 0.5, regularized=True)
        assert leader_probability(first, second) == pytest.approx(float(expected), abs=1e-12)
    # Large votes (beyond a float's 2^1023) stay exact.
    expected = 1 - mpmath.betainc(601, 501, 0, 0.5, regularized=True)
    assert leader_probability(600, 500) == pytest.approx(float(expected), abs=1e-12)


def test_settled_and_fewest_deciding():
    assert not settled([], 0.5) and not settled([0, 0], 0.5)
    assert settled([4], 0.95) and not settled([3], 0.95)  # 31/32 >= 0.95 > 15/16
    assert settled([1, 4, 0], 0.8) and not settled([3, 1], 0.9)  # order does not matter; 13/16 < 0.9
    assert [fewest_deciding(c) for c in (0.5, 0.8, 0.95, 0.99, 0.999)] == [1, 2, 4, 6, 9]
    for confidence in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError):
            fewest_deciding(confidence)


@pytest.mark.parametrize(("labels", "confidence", "used"), [
    ("AAAAAAAA", 0.95, 4),  # unanimous: the fewest that can decide
    ("ABAAAAAA", 0.95, 7),  # (5, 1) after 6 samples is 120/128 = 0.9375; (6, 1) after 7 is 247/256
    ("ABABABAB", 0.95, 8),  # never settles: the whole budget
    ("AB", 0.5, 1),  # one vote already leads with 3/4
    (["x", None, None, "x"], 0.7, 1),  # None answers do not vote (3/4 >= 0.7 after the first)
    ([None, None, None], 0.5, 3),
])
def test_samples_used_by_hand(labels, confidence, used):
    assert samples_used(list(labels), confidence) == used


def test_the_rule_at_confidence_near_one_is_the_full_vote():
    """Close to 1 nothing settles before the last sample, so the adaptive vote is the full vote."""
    for labels in itertools.product("AB", repeat=8):
        assert samples_used(list(labels), 0.999999) == 8


def test_vote_groups_and_leader_match_majority_vote():
    answers = ["1/3", "0.5", r"\frac{1}{2}", None, "1/3", r"\dfrac{1}{2}"]
    assert vote_labels(answers) == [0, 1, 1, None, 0, 1]
    assert vote_groups(answers) == [("1/3", 2), ("0.5", 3)]
    assert leader(vote_groups(answers)) == majority_vote(answers) == "0.5"
    assert leader([("7", 2), ("8", 2)]) == "7" and leader([]) is None
