"""The answer in a graded text: its last ``\\boxed{}``.

One rule for every caller (the server's ``answer`` field and grades, the harness, the trainer's reward, the
demo): :func:`boxed_answer` is the answer in the text LUFFY grades (:func:`luffy_math.thinking.answer_part`),
and the "luffy" grade reads the same box (``\\fbox`` is not read: LUFFY's grader does not read it).
"""

from __future__ import annotations

_BOXED = "\\boxed"
_FBOX = "\\fbox"


def _braced_after(text: str, start: int) -> str | None:
    """Content of the balanced ``{...}`` that opens exactly at ``start``, or None if it is not closed."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for pos in range(start, len(text)):
        char = text[pos]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : pos]
    return None


def last_boxed(text: str, allow_fbox: bool = False) -> str | None:
    """Content of the last ``\\boxed{...}``; with ``allow_fbox``, ``\\fbox{...}`` counts when there is no
    ``\\boxed`` at all (reference solutions that box with ``\\fbox``, e.g. Minerva's).

    Like LUFFY's grader, only the very last ``\\boxed`` is looked at: if it is not immediately followed by a
    closed ``{...}`` (``\\boxed 5``, a cut-off ``\\boxed{5``) the answer is None even when an earlier box
    is complete, so a truncated response is never credited with an abandoned answer.
    """
    for marker in (_BOXED, _FBOX) if allow_fbox else (_BOXED,):
        idx = text.rfind(marker)
        if idx >= 0:
            return _braced_after(text, idx + len(marker))
    return None


def boxed_answer(text: str) -> str | None:
    """The answer of a graded text: the content of its last ``\\boxed{}`` (LUFFY's rule), else None."""
    return last_boxed(text)


def as_boxed(answer: str) -> str:
    """A bare answer as a response the graders read: ``\\boxed{answer}``."""
    return f"\\boxed{{{answer}}}"
