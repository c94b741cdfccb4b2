"""The think tags and the one rule for where a response's thought ends and its answer begins.

The tags: :data:`THINK_START`, :data:`THINK_END`, and :data:`THINK_OPEN`, what a LUFFY chat template appends
to open the assistant's thought (so the output starts inside it).

:func:`split_response` gives the (reasoning, content) of a response, the fields of vLLM's ``deepseek_r1``
parser. That parser splits by token id, so it needs ``<think>`` and ``</think>`` to be single tokens;
Qwen2.5's vocabulary (the base of LUFFY's checkpoints) writes them as several tokens (``<th`` ``ink``
``>``), so luffy-serve splits the decoded text instead, with the parser's semantics:

- a leading ``<think>`` (after optional whitespace) is dropped: the chat template usually opened the block,
  so the output starts inside it, but a model may also write the tag itself;
- everything up to the first ``</think>`` is reasoning, everything after it is content; a later
  ``</think>`` stays in the content;
- no ``</think>`` at all: the whole output is reasoning and the content is None (an unfinished thought);
- nothing after ``</think>``: the content is None.

One difference from the parser: it drops the text up to the first ``<think>`` wherever the tag is; here
only a leading tag is dropped, so an answer that quotes ``<think>`` keeps its text.

:class:`StreamSplit` gives, chunk by chunk, pieces that join to exactly what :func:`split_response` gives
for the whole text, however the text was cut: a tag cut across chunks is held back until it is decided.
:func:`join_response` writes the parts back as the model wrote them.

:func:`answer_part` is the text LUFFY grades (the server's ``answer`` and grades, the harness's labels, the
trainer's reward, the demo all read it), and :func:`answer_part_parsed` the same for an output that a
reasoning parser already split.
"""

from __future__ import annotations

THINK_START = "<think>"
THINK_END = "</think>"
THINK_OPEN = THINK_START + "\n"


def split_response(text: str) -> tuple[str, str | None]:
    """(reasoning, content) of a whole response; content is None when the thought never closed."""
    stripped = text.lstrip()
    if stripped.startswith(THINK_START):
        text = stripped[len(THINK_START):]
    reasoning, sep, content = text.partition(THINK_END)
    if not sep:
        return text, None
    return reasoning, content or None


def join_response(reasoning: str | None, content: str | None) -> str:
    """The text a model wrote, from its :func:`split_response` parts: ``</think>`` only if the thought closed."""
    reasoning = reasoning or ""
    return reasoning if content is None else f"{reasoning}{THINK_END}{content}"


def answer_part(text: str) -> str:
    """What LUFFY grades of a whole output: everything after the first ``</think>``, or all of it (a leading
    ``<think>`` included) when the thought never closed, as LUFFY's harness takes the text after the tag.

    Not :func:`split_response`'s content: that is None both without the tag (graded: the whole text) and with
    nothing after it (graded: the empty text)."""
    _, closed, after = text.partition(THINK_END)
    return after if closed else text


def answer_part_parsed(reasoning: str | None, content: str | None) -> str:
    """:func:`answer_part` of an output that a reasoning parser already split: the content, or the
    reasoning when the content is empty.

    The parser leaves the content None when the thought never closed (then the whole output, all of it
    reasoning, is graded, as :func:`answer_part` does), but also when nothing follows ``</think>``: that
    case cannot be told apart here, and the reasoning is graded too (where :func:`answer_part` of the whole
    text would grade an empty answer).
    """
    return content if content else (reasoning or "")


def _held_back(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class StreamSplit:
    """Incremental :func:`split_response`: ``feed`` each delta's text, ``finish`` at the end; each returns
    the (reasoning, content) pieces that can be sent at that point (either may be empty)."""

    def __init__(self) -> None:
        self._state = "start"  # start -> reasoning -> content
        self._pending = ""

    @property
    def closed(self) -> bool:
        """True once ``</think>`` has been seen."""
        return self._state == "content"

    def feed(self, text: str) -> tuple[str, str]:
        if not text:
            return "", ""
        if self._state == "content":
            return "", text
        self._pending += text
        if self._state == "start":
            stripped = self._pending.lstrip()
            if len(stripped) < len(THINK_START) and THINK_START.startswith(stripped):
                return "", ""  # only whitespace or a partial <think> so far
            self._pending = stripped[len(THINK_START):] if stripped.startswith(THINK_START) else self._pending
            self._state = "reasoning"
        reasoning, sep, content = self._pending.partition(THINK_END)
        if sep:
            self._state, self._pending = "content", ""
            return reasoning, content
        keep = _held_back(self._pending, THINK_END)
        ready, self._pending = self._pending[: len(self._pending) - keep], self._pending[len(self._pending) - keep:]
        return ready, ""

    def finish(self) -> tuple[str, str]:
        """Whatever was held back: the stream ended, so it is reasoning."""
        rest, self._pending = self._pending, ""
        if self._state == "start":
            self._state = "reasoning"
        return rest, ""
