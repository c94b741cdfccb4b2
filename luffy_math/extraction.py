"""Where the answer sits in a response: the last ``\\boxed{}`` and the ``</think>`` split."""

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


def last_boxed(text: str, allow_fbox: bool = True) -> str | None:
    """Content of the last ``\\boxed{...}``; ``\\fbox{...}`` only counts when there is no ``\\boxed`` at all.

    Like LUFFY's grader, only the very last ``\\boxed`` is looked at: if it is not immediately followed by a
    closed ``{...}`` (``\\boxed 5``, a cut-off ``\\boxed{5``) the answer is None even when an earlier box
    is complete, so a truncated response is never credited with an abandoned answer.
    """
    for marker in (_BOXED, _FBOX) if allow_fbox else (_BOXED,):
        idx = text.rfind(marker)
        if idx >= 0:
            return _braced_after(text, idx + len(marker))
    return None


def extract_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` (or, if no ``\\boxed`` at all, the last ``\\fbox{}``), else None."""
    return last_boxed(text, allow_fbox=True)


def split_reasoning(text: str, end_tag: str = "</think>") -> tuple[str | None, str]:
    """(reasoning, rest): the text before the first ``</think>`` minus a leading ``<think>``, and the text after.

    Returns (None, text) when there is no ``</think>``: an unfinished thought has no separate answer part.
    """
    head, sep, tail = text.partition(end_tag)
    if not sep:
        return None, text
    stripped = head.lstrip()
    if stripped.startswith("<think>"):
        head = stripped[len("<think>") :]
    return head, tail
