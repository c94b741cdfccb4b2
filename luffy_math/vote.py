"""Majority vote over final answers, counting equivalent answers (``0.5``, ``\\frac{1}{2}``) as one, and the
stopping rule of an adaptive vote (samples drawn until the leading answer is settled).

The one tie rule, for the server, the demo and the harness's maj@k: the answer with the most votes wins (a
plurality: it need not have more than half); when several answers share the most votes, the one seen first
(the lowest sample index) wins, and the vote says it was a tie (:class:`Majority`, ``reason == "tie"``).
Answers that are None (no boxed answer) do not vote.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from luffy_math.deadline import DeadlineExceeded, call_with_deadline
from luffy_math.grader import luffy_match
from luffy_math.normalize import mathd_normalize

# One comparison between two candidate answers; past this they count as different.
COMPARE_SECONDS = 2.0


def _equivalent(representative: str, candidate: str) -> bool:
    try:
        return call_with_deadline(COMPARE_SECONDS, luffy_match, candidate, representative) is not None
    except DeadlineExceeded:
        return False


def vote_labels(answers: Sequence[str | None]) -> list[int | None]:
    """Each answer's group number by LUFFY's equivalence (0, 1, ... in first-seen order; None answers get
    None and do not vote).

    Answers join the first earlier group whose first member they match (the first member is the group's
    "gold"), so the grouping is deterministic.
    """
    groups: list[tuple[str, str]] = []  # (first member, its normal form)
    labels: list[int | None] = []
    for answer in answers:
        if answer is None:
            labels.append(None)
            continue
        normal = mathd_normalize(answer)
        for index, (first, first_normal) in enumerate(groups):
            if normal == first_normal or _equivalent(first, answer):
                labels.append(index)
                break
        else:
            labels.append(len(groups))
            groups.append((answer, normal))
    return labels


def vote_groups(answers: Sequence[str | None]) -> list[tuple[str, int]]:
    """The answers grouped by LUFFY's equivalence (:func:`vote_labels`): (first member's text, count) per
    group, in first-seen order."""
    firsts: dict[int, str] = {}
    counts: dict[int, int] = {}
    for answer, label in zip(answers, vote_labels(answers), strict=True):
        if label is not None and answer is not None:
            firsts.setdefault(label, answer)
            counts[label] = counts.get(label, 0) + 1
    return [(firsts[label], counts[label]) for label in sorted(firsts)]


# Why a vote's answer is not a clear winner (Majority.reason); None when one answer has the most votes.
TIE = "tie"  # several answers share the most votes: the first seen of them is the answer
NO_ANSWER = "no_answer"  # no sample gave an answer: the answer is None


@dataclass(frozen=True)
class Majority:
    """The outcome of a vote: the winning answer, why it is not a clear winner (None, :data:`TIE`,
    :data:`NO_ANSWER`), and the votes per answer group (its first member's text), most votes first, equal
    counts in first-seen order, so the tied answers are the leading entries with the top count."""

    answer: str | None
    reason: str | None
    counts: dict[str, int]

    @property
    def tied(self) -> dict[str, int]:
        """The answers that share the most votes, with their counts (empty unless a tie)."""
        if self.reason != TIE:
            return {}
        top = next(iter(self.counts.values()))
        return {answer: count for answer, count in self.counts.items() if count == top}


def tally(groups: Sequence[tuple[str, int]]) -> Majority:
    """The :class:`Majority` of answer groups ((text, votes), first-seen order), by the module's tie rule."""
    if not groups:
        return Majority(None, NO_ANSWER, {})
    ordered = sorted(groups, key=lambda group: -group[1])  # stable: equal counts stay in first-seen order
    top = ordered[0][1]
    tie = len(ordered) > 1 and ordered[1][1] == top
    return Majority(ordered[0][0], TIE if tie else None, dict(ordered))


def leader(groups: Sequence[tuple[str, int]]) -> str | None:
    """The largest group's text; a tie goes to the group seen first (:func:`tally`)."""
    return tally(groups).answer


def majority(answers: Sequence[str | None]) -> Majority:
    """The vote over ``answers`` by LUFFY's equivalence (:func:`vote_groups`), with its tie and its counts."""
    return tally(vote_groups(answers))


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The answer most others agree with, by LUFFY's equivalence (:func:`vote_groups`); None answers do not
    vote; a tie goes to the group seen first, and the group is returned as its first member's text."""
    return leader(vote_groups(answers))


def exact_groups(answers: Sequence[str | None]) -> list[tuple[str, int]]:
    """:func:`vote_groups` by exact text (first-seen order), for a vote that ran out of time."""
    counts: dict[str, int] = {}
    for answer in answers:
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    return list(counts.items())


def exact_majority(answers: Sequence[str | None]) -> str | None:
    """Exact-string majority (first seen wins ties; None answers do not vote), for a vote that ran out of time."""
    return tally(exact_groups(answers)).answer


# The default confidence of an adaptive vote (the leader must stay ahead with this posterior probability).
DEFAULT_CONFIDENCE = 0.95


@functools.lru_cache(maxsize=4096)
def leader_probability(first: int, second: int) -> float:
    """P(p1 > p2) for the two leading answers with ``first`` and ``second`` votes: the Beta criterion of
    Adaptive-Consistency (Aggarwal et al., EMNLP 2023, arXiv 2305.11860), p1 / (p1 + p2) ~ Beta(first + 1,
    second + 1) under a uniform prior, and the probability that it exceeds 1/2.

    With integer parameters the Beta CDF is a binomial tail (I_x(a, b) = P(Binomial(a + b - 1, x) >= a)), so
    this is exact: P(X > 1/2) = P(Binomial(first + second + 1, 1/2) <= first).
    """
    if first < 0 or second < 0:
        raise ValueError("vote counts cannot be negative")
    trials = first + second + 1
    return sum(math.comb(trials, j) for j in range(first + 1)) / 2**trials  # exact integers, then one division


def settled(counts: Sequence[int], confidence: float = DEFAULT_CONFIDENCE) -> bool:
    """Does the adaptive vote stop here: is the leading answer ahead of the runner-up with probability at
    least ``confidence`` (:func:`leader_probability`)? ``counts``: votes per distinct answer, any order."""
    top = sorted(counts, reverse=True)[:2] + [0, 0]
    return top[0] > 0 and leader_probability(top[0], top[1]) >= confidence


def more_to_settle(counts: Sequence[int], confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest further samples that could settle a vote with these counts (votes per distinct answer):
    all of them joining the leader. With no votes yet, the fewest that can settle a vote at all (4 at 0.95:
    four agreeing samples give 31/32)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    top = sorted(counts, reverse=True)[:2] + [0, 0]
    more = 1
    while leader_probability(top[0] + more, top[1]) < confidence:
        more += 1
    return more


def fewest_deciding(confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest samples that can settle a vote at ``confidence``: all of them agreeing (4 at 0.95)."""
    return more_to_settle([], confidence)


def samples_used(labels: Sequence[Hashable | None], confidence: float = DEFAULT_CONFIDENCE) -> int:
    """How many of these samples (their answers' group labels, None for no answer, in the order drawn) an
    adaptive vote at ``confidence`` takes: it stops after the first sample at which :func:`settled` holds,
    else at the last."""
    counts: dict[Hashable, int] = {}
    for used, label in enumerate(labels, 1):
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
            if settled(list(counts.values()), confidence):
                return used
    return len(labels)
