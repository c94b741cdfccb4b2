"""The reasoning / answer split of a response by its text, whole or as it streams.

vLLM's ``deepseek_r1`` reasoning parser splits by token id, so it needs ``<think>`` and ``</think>`` to be
single tokens. Qwen2.5's vocabulary (the base of LUFFY's checkpoints) writes them as several tokens
(``<th`` ``ink`` ``>``), so luffy-serve splits the decoded text instead, with the parser's semantics:

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
"""

from __future__ import annotations

THINK_START = "<think>"
THINK_END = "</think>"
# What a LUFFY chat template appends to open the assistant's thought (the output starts inside it).
THINK_OPEN = THINK_START + "\n"
START, END = THINK_START, THINK_END  # old names: removed once every caller uses the new ones (#29)


def split_response(text: str) -> tuple[str, str | None]:
    """(reasoning, content) of a whole response; content is None when the thought never closed."""
    stripped = text.lstrip()
    if stripped.startswith(START):
        text = stripped[len(START):]
    reasoning, sep, content = text.partition(END)
    if not sep:
        return text, None
    return reasoning, content or None


def join_response(reasoning: str | None, content: str | None) -> str:
    """The text a model wrote, from its :func:`split_response` parts: ``</think>`` only if the thought closed."""
    reasoning = reasoning or ""
    return reasoning if content is None else f"{reasoning}{THINK_END}{content}"


def _held_back(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class StreamSplit:
    """Incremental :func:`split_response`: ``feed`` each delta's text, ``finish`` at the end; each returns
    the (reasoning, content) pieces that can be sent now (either may be empty)."""

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
            if len(stripped) < len(START) and START.startswith(stripped):
                return "", ""  # only whitespace or a partial <think> so far
            self._pending = stripped[len(START):] if stripped.startswith(START) else self._pending
            self._state = "reasoning"
        reasoning, sep, content = self._pending.partition(END)
        if sep:
            self._state, self._pending = "content", ""
            return reasoning, content
        keep = _held_back(self._pending, END)
        ready, self._pending = self._pending[: len(self._pending) - keep], self._pending[len(self._pending) - keep:]
        return ready, ""

    def finish(self) -> tuple[str, str]:
        """Whatever was held back: the stream ended, so it is reasoning."""
        rest, self._pending = self._pending, ""
        if self._state == "start":
            self._state = "reasoning"
        return rest, ""
