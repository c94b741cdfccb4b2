"""The text split of reasoning and content (luffy_math.thinking): whole, and streamed in any cut."""

from __future__ import annotations

import random

import pytest

from luffy_math.thinking import StreamSplit, split_response

CASES = [
    # (output, reasoning, content): the deepseek_r1 parser's semantics
    ("Let me think.\n</think>\n\nThe answer is $\\boxed{42}$.", "Let me think.\n", "\n\nThe answer is $\\boxed{42}$."),
    ("<think>\nabc</think>x", "\nabc", "x"),  # the model wrote the tag the template usually opens
    ("  \n<think>a</think>", "a", None),  # nothing after </think>: null content
    ("no close at all", "no close at all", None),  # an unfinished thought is all reasoning
    ("a</think>b</think>c", "a", "b</think>c"),  # a later </think> stays in the content
    ("</think>", "", None),
    ("<thi", "<thi", None),
    ("x<think>y</think>z", "x<think>y", "z"),  # only a leading <think> is dropped
    ("a</t</think>b", "a</t", "b"),
    ("", "", None),
]


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_whole_response(text: str, reasoning: str, content: str | None) -> None:
    assert split_response(text) == (reasoning, content)


def _streamed(parts: list[str]) -> tuple[str, str]:
    split, reasoning, content = StreamSplit(), "", ""
    for part in parts:
        r, c = split.feed(part)
        reasoning, content = reasoning + r, content + c
    r, c = split.finish()
    return reasoning + r, content + c


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_any_cut_of_the_stream_joins_to_the_whole_split(text: str, reasoning: str, content: str | None) -> None:
    rng = random.Random(text)
    cuts_seen = 0
    for _ in range(300):
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        parts = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        cuts_seen += len(parts)
        assert _streamed(parts) == (reasoning, content or "")
    assert _streamed(list(text)) == (reasoning, content or "")  # one character per chunk
    assert cuts_seen > 300


def test_a_tag_cut_across_chunks_is_held_back_until_decided() -> None:
    split = StreamSplit()
    assert split.feed("step one </th") == ("step one ", "")  # "</th" might open </think>
    assert not split.closed
    assert split.feed("ink> the answer") == ("", " the answer")
    assert split.closed
    assert split.feed(" </think> stays") == ("", " </think> stays")


def test_a_partial_tag_that_turns_out_to_be_text_is_sent_as_reasoning() -> None:
    split = StreamSplit()
    assert split.feed("x </t") == ("x ", "")
    assert split.feed("able>") == ("</table>", "")
    assert split.feed(" </thi") == (" ", "")
    assert split.finish() == ("</thi", "")  # the stream ended inside a would-be tag


def test_a_leading_think_tag_cut_in_pieces_is_dropped() -> None:
    split = StreamSplit()
    assert split.feed("\n<th") == ("", "")
    assert split.feed("ink>\nhmm") == ("\nhmm", "")
