"""The think/answer rule (luffy_math.thinking): the split of a whole response, its inverse, the streamed split in
any cut, and the text LUFFY grades.

One convention for a response without ``</think>``: split_response gives ``(text, None)``, an unfinished thought
(vLLM's deepseek_r1 parser does the same). The second splitter this replaced gave ``(None, text)`` there; what
each of its callers shows for such a text stays as it was:

- the graded text (answer_part: the server's ``answer`` and grades, the harness's labels, the reward): all of
  the text, a leading ``<think>`` included, as LUFFY's harness grades it (the GRADED column below);
- the demo client on an endpoint that does not split (app.client.Sample.parts): no thought and the whole text
  as the answer, since such an endpoint may serve a model that does not think (tests/app/test_app_client.py).
"""

from __future__ import annotations

import pytest

from luffy_math import answer_part, answer_part_parsed, join_response, split_response
from luffy_math.thinking import THINK_END, THINK_OPEN, THINK_START, StreamSplit

CASES = [
    # (output, reasoning, content, graded): split_response (the deepseek_r1 parser's semantics), answer_part
    ("Let me think.\n</think>\n\nIt is $\\boxed{42}$.", "Let me think.\n", "\n\nIt is $\\boxed{42}$.",
     "\n\nIt is $\\boxed{42}$."),
    ("no close at all", "no close at all", None, "no close at all"),  # an unfinished thought: graded whole
    ("<think>\nabc</think>x", "\nabc", "x", "x"),  # the model wrote the tag the template usually opens
    ("<think>unfinished", "unfinished", None, "<think>unfinished"),  # graded whole, the tag included
    ("  \n<think>a</think>", "a", None, ""),  # nothing after </think>: null content, an empty graded text
    ("  <think>x</think>y", "x", "y", "y"),
    ("a</think>b</think>c", "a", "b</think>c", "b</think>c"),  # a later </think> stays in the content
    ("</think>", "", None, ""),
    ("<thi", "<thi", None, "<thi"),
    ("x<think>y</think>z", "x<think>y", "z", "z"),  # only a leading <think> is dropped
    ("hm</think>It is written <think>, $\\boxed{1}$", "hm", "It is written <think>, $\\boxed{1}$",
     "It is written <think>, $\\boxed{1}$"),  # a <think> quoted in the answer is text
    ("a</t</think>b", "a</t", "b", "b"),
    ("", "", None, ""),
]
IDS = [repr(case[0])[:30] for case in CASES]


def test_the_tags() -> None:
    assert (THINK_START, THINK_END, THINK_OPEN) == ("<think>", "</think>", "<think>\n")


@pytest.mark.parametrize(("text", "reasoning", "content", "graded"), CASES, ids=IDS)
def test_whole_response(text: str, reasoning: str, content: str | None, graded: str) -> None:
    assert split_response(text) == (reasoning, content)


@pytest.mark.parametrize(("text", "reasoning", "content", "graded"), CASES, ids=IDS)
def test_join_writes_the_parts_back(text: str, reasoning: str, content: str | None, graded: str) -> None:
    joined = join_response(reasoning, content)
    assert split_response(joined) == (reasoning, content)
    # The text as the model wrote it, but for what the split drops: a leading <think> and a final </think>.
    if not text.lstrip().startswith(THINK_START) and (content is not None or THINK_END not in text):
        assert joined == text


@pytest.mark.parametrize(("text", "reasoning", "content", "graded"), CASES, ids=IDS)
def test_answer_part_is_what_luffy_grades(text: str, reasoning: str, content: str | None, graded: str) -> None:
    assert answer_part(text) == graded
    # LUFFY's harness: the text after the first </think>, else the whole output (nothing stripped).
    assert graded == (text.split(THINK_END, 1)[1] if THINK_END in text else text)
    # The split's content where the thought closed; the split cannot say it (None both times) otherwise.
    if THINK_END in text:
        assert graded == (content or "")


def _streamed(parts: list[str]) -> tuple[str, str]:
    split, reasoning, content = StreamSplit(), "", ""
    for part in parts:
        r, c = split.feed(part)
        reasoning, content = reasoning + r, content + c
    r, c = split.finish()
    return reasoning + r, content + c


@pytest.mark.parametrize(("text", "reasoning", "content", "graded"), CASES, ids=IDS)
def test_any_cut_of_the_stream_joins_to_the_whole_split(text: str, reasoning: str, content: str | None,
                                                       graded: str) -> None:
    whole = (reasoning, content or "")
    cuts = range(len(text) + 1)
    for i in cuts:
        for j in cuts[i:]:
            assert _streamed([text[:i], text[i:j], text[j:]]) == whole, (i, j)
    assert _streamed(list(text)) == whole  # one character per chunk


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


def test_answer_part_of_a_parser_split() -> None:
    """vLLM's reasoning parser gives (reasoning, content): the content is graded, and when it is empty
    (a thought that never closed) the reasoning, which is then the whole output."""
    assert answer_part_parsed("hmm", r"so \boxed{1}") == r"so \boxed{1}"
    assert answer_part_parsed(r"unclosed \boxed{2}", None) == r"unclosed \boxed{2}"
    assert answer_part_parsed(None, None) == ""
