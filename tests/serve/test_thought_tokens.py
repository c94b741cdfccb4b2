"""Counting a thought's tokens (luffy_serve.thought_tokens) on the two tiny tokenizers: single think tokens
(vLLM's deepseek_r1 parser) and Qwen2.5's vocabulary, where the tags are several tokens (the text split)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from luffy_serve.thought_tokens import ThoughtCounter

THOUGHT = "Let me think step by step: 6 * 7 = 42, and $x^2$ is not needed.\n"
ANSWER = "\n\nSo the answer is $\\boxed{42}$."


@pytest.fixture(scope="module", params=["think-tokens", "qwen-vocab"])
def tokenizer(request: pytest.FixtureRequest):
    model_dir = request.getfixturevalue("tiny_model_dir" if request.param == "think-tokens" else "qwen_model_dir")
    return AutoTokenizer.from_pretrained(model_dir)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_a_closed_thought_counts_its_tokens(tokenizer) -> None:
    counter = ThoughtCounter(tokenizer)
    thought = encode(tokenizer, THOUGHT)
    ids = thought + encode(tokenizer, "</think>" + ANSWER) + [tokenizer.eos_token_id]
    assert counter.count(ids) == counter.count(ids, closed_only=True) == len(thought)
    # A model that writes the opening tag itself: the tag is not thought.
    assert counter.count(encode(tokenizer, "<think>") + ids) == len(thought)


def test_an_unclosed_thought_is_all_thought_on_chat_and_none_on_completions(tokenizer) -> None:
    counter = ThoughtCounter(tokenizer)
    thought = encode(tokenizer, THOUGHT * 3)
    ids = thought + [tokenizer.eos_token_id]  # a special token carries no text: not counted
    assert counter.count(ids) == len(thought)
    assert counter.count(ids, closed_only=True) == 0
    assert counter.count([]) == 0


def test_an_empty_thought_counts_nothing(tokenizer) -> None:
    assert ThoughtCounter(tokenizer).count(encode(tokenizer, "</think>" + ANSWER)) == 0
