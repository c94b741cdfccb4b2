"""``usage.completion_tokens_details.reasoning_tokens``: the tokens of the thought, counted from the token ids
the engine generated, whichever split made the thought.

vLLM 0.32 fills the field only on chat with a reasoning parser, and counts only tokens between a ``<think>``
and a ``</think>`` token in the output; LUFFY's chat template opens ``<think>`` in the prompt, so the output
starts inside the thought and vLLM counts 0. Without a parser (Qwen2.5's vocabulary, the math layer splits the
text) and on completions it reports nothing. The math layer therefore sets the field itself (replacing vLLM's
value, never adding to it), summed over a request's choices:

- single ``<think>``/``</think>`` tokens (vLLM's deepseek_r1 parser): the tokens before the first ``</think>``
  token, not counting ``<think>`` and special tokens;
- the tags written as several tokens (the text split, :mod:`luffy_math.thinking`): the tokens that carry text
  of the thought, found by decoding the ids' prefixes and suffixes (a galloping search from each end: a few
  decodes of the short answer and of what precedes the thought, not of the whole thought);
- a chat thought that never closed is all thought (as ``reasoning_content`` has it); on completions, which
  have no reasoning split, only a closed thought counts (an output without ``</think>`` has 0).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from luffy_math.thinking import THINK_END, THINK_START

from .reasoning import has_think_tokens


class GeneratedTokens:
    """The token ids each choice of one request generated so far, by choice index (fed the engine's outputs)."""

    def __init__(self) -> None:
        self.ids: dict[int, list[int]] = {}

    def see(self, output: Any, delta: bool) -> None:
        """Record a vLLM ``RequestOutput``: ``delta`` outputs carry new ids, the others all ids so far."""
        for choice in output.outputs:
            ids = list(choice.token_ids or ())
            if delta:
                self.ids.setdefault(choice.index, []).extend(ids)
            else:
                self.ids[choice.index] = ids


# The recording of the request being handled, set by the math layer around vLLM's handler; None elsewhere.
RECORDING: contextvars.ContextVar[GeneratedTokens | None] = contextvars.ContextVar("luffy_generated_tokens",
                                                                                   default=None)


async def recorded(outputs: AsyncGenerator, recording: GeneratedTokens, delta: bool) -> AsyncGenerator:
    """``outputs`` (an engine's ``generate``) passed through, each recorded on the way; closing this closes
    ``outputs`` at once, so vLLM still aborts a request whose client left."""
    try:
        async for output in outputs:
            recording.see(output, delta)
            yield output
    finally:
        await outputs.aclose()


class ThoughtCounter:
    """Counts the thought's tokens in a choice's generated ids, for one tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.by_ids = has_think_tokens(tokenizer)
        vocab = tokenizer.get_vocab()
        self.start_id = vocab.get(THINK_START)
        self.end_id = vocab.get(THINK_END)
        self.special = set(getattr(tokenizer, "all_special_ids", ()) or ()) | {self.start_id, self.end_id}

    def count(self, ids: Sequence[int], closed_only: bool = False) -> int:
        """The thought's tokens among ``ids``; with ``closed_only``, 0 unless the thought closed."""
        if not ids:
            return 0
        if self.by_ids:
            closed = self.end_id in ids
            if closed_only and not closed:
                return 0
            thought = ids[: ids.index(self.end_id)] if closed else ids
            return sum(token not in self.special for token in thought)
        return self._count_by_text(ids, closed_only)

    def _count_by_text(self, ids: Sequence[int], closed_only: bool) -> int:
        """Tokens whose text overlaps the thought's span [begin, end) of the decoded output."""
        text = self._text(ids)
        stripped = text.lstrip()
        begin = len(text) - len(stripped) + len(THINK_START) if stripped.startswith(THINK_START) else 0
        end = text.find(THINK_END, begin)
        if end < 0:
            if closed_only:
                return 0
            end = len(text)
        if end <= begin:
            return 0
        # Token i spans [L(i), L(i + 1)), L(k) being the length of the first k tokens' text (non-decreasing);
        # it carries thought when it starts before ``end`` (its suffix is longer than the text after ``end``)
        # and ends after ``begin``. Both boundaries are found by galloping from the near end of the ids: the
        # answer after the thought is short, and so is what comes before it.
        after = len(text) - end
        starting_before_end = _first_true_from_end(lambda i: len(self._text(ids[i:])) <= after, len(ids))
        ending_by_begin = _first_true_from_start(lambda k: len(self._text(ids[:k])) > begin, len(ids)) - 1
        return max(0, starting_before_end - ending_by_begin)

    def _text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True) if len(ids) else ""


def _first_true_from_start(holds: Callable[[int], bool], n: int) -> int:
    """The smallest k in [0, n] for which ``holds`` (false, then true from some k on), n + 1 if none, searched
    from 0 outwards (a few calls when k is small)."""
    if holds(0):
        return 0
    low, high = 0, 1  # holds(low) is false
    while high <= n and not holds(high):
        low, high = high, 2 * high
    high = min(high, n + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if holds(middle) else (middle, high)
    return high


def _first_true_from_end(holds: Callable[[int], bool], n: int) -> int:
    """The smallest k in [0, n] for which ``holds`` (false, then true from some k on; true at n), searched from
    n inwards (a few calls when n - k is small)."""
    high, step = n, 1  # holds(high) is true
    low = high - step
    while low >= 0 and holds(low):
        high, step = low, 2 * step
        low = high - step
    low = max(low, -1)  # holds(low) is false, or low is before the start
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if holds(middle) else (middle, high)
    return high


def set_reasoning_tokens(usage: dict[str, Any], tokens: int) -> None:
    """Write ``tokens`` into an OpenAI usage object's ``completion_tokens_details``."""
    details = usage.get("completion_tokens_details")
    usage["completion_tokens_details"] = {**(details if isinstance(details, dict) else {}),
                                          "reasoning_tokens": tokens}
