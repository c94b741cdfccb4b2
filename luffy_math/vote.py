"""Majority vote over final answers, counting equivalent answers (``0.5``, ``\\frac{1}{2}``) as one."""

from __future__ import annotations

from collections.abc import Sequence

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


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The answer most others agree with, by LUFFY's equivalence; None answers do not vote.

    Answers join the first earlier group whose first member they match (the first member is the group's
    "gold"), so the grouping is deterministic; a tie goes to the group seen first, and the group is returned
    as its first member's text.
    """
    groups: list[tuple[str, str, int]] = []  # (first member, its normal form, count)
    for answer in answers:
        if answer is None:
            continue
        normal = mathd_normalize(answer)
        for index, (first, first_normal, count) in enumerate(groups):
            if normal == first_normal or _equivalent(first, answer):
                groups[index] = (first, first_normal, count + 1)
                break
        else:
            groups.append((answer, normal, 1))
    if not groups:
        return None
    best = max(range(len(groups)), key=lambda i: (groups[i][2], -i))
    return groups[best][0]


def exact_majority(answers: Sequence[str | None]) -> str | None:
    """Exact-string majority (first seen wins ties; None answers do not vote), for a vote that ran out of time."""
    counts: dict[str, int] = {}
    for answer in answers:
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None
