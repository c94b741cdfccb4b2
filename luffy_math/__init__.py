"""luffy_math: the one place for answer extraction, grading and majority vote.

PROVISIONAL STUB (to be replaced by the luffy_math issue): the public names and signatures below are the
contract the server, the harness and the trainer code against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GradeMode = Literal["luffy", "math_verify"]


@dataclass(frozen=True)
class Grade:
    correct: bool
    extracted: str | None
    decided_by: str
    formatted: bool
    timed_out: bool = False


def _last_boxed(text: str) -> str | None:
    for marker in ("\\boxed", "\\fbox"):
        pass
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    i = text.find("{", idx)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def extract_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` (or ``\\fbox{}``), or None."""
    return _last_boxed(text)


def split_reasoning(text: str, end_tag: str = "</think>") -> tuple[str | None, str]:
    """(reasoning, answer): the text before the first ``</think>`` and after it; (None, text) if absent."""
    head, sep, tail = text.partition(end_tag)
    if not sep:
        return None, text
    return head.removeprefix("<think>"), tail


def majority_vote(answers: list[str | None]) -> str | None:
    """Most common answer (ties: the first seen); None answers do not vote."""
    counts: dict[str, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda a: counts[a])


def grade(response: str, gold: str | list[str], mode: GradeMode = "luffy", timeout: float = 10.0) -> Grade:
    ans = extract_answer(response)
    golds = [gold] if isinstance(gold, str) else gold
    return Grade(correct=ans is not None and ans.strip() in [g.strip() for g in golds], extracted=ans,
                 decided_by="string", formatted=ans is not None)
