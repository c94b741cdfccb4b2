"""Where the answer sits in a response: the graded text (after the first ``</think>``) and its last ``\\boxed{}``.

One rule for every caller (the server's ``answer`` field and grades, the harness, the trainer's reward, the
demo): :func:`answer_part` is the text LUFFY grades, :func:`boxed_answer` the answer in it, and the "luffy"
grade reads the same box (``\\fbox`` is not read: LUFFY's grader does not read it).
"""

from __future__ import annotations

THINK_END = "</think>"
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


def split_reasoning(text: str, end_tag: str = THINK_END) -> tuple[str | None, str]:
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


def answer_part(text: str) -> str:
    """What LUFFY grades of a whole output: the text after the first ``</think>``, or all of it when the
    thought never closed (LUFFY's harness: ``split("</think>")[1]`` where the tag is, else the text)."""
    return split_reasoning(text)[1]


def answer_part_parsed(reasoning: str | None, content: str | None) -> str:
    """:func:`answer_part` of an output that vLLM's reasoning parser already split: the content, or the
    reasoning when the content is empty.

    The parser leaves the content None when the thought never closed (then the whole output, all of it
    reasoning, is graded, as :func:`answer_part` does), but also when nothing follows ``</think>``: that
    case cannot be told apart here, and the reasoning is graded too (where :func:`answer_part` of the whole
    text would grade an empty answer).
    """
    return content if content else (reasoning or "")
