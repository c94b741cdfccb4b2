"""Adaptive majority votes through luffy-serve (real vLLM CPU engine, the official openai client): the response
shape, stream and not, seeded samples equal to the full vote's, aborted samples leaving nothing running, 400s.

The session's servers are shared (tests/conftest.py); the engine tests run on the think-token checkpoint,
whose small vocabulary keeps long generations quick."""

from __future__ import annotations

import time

import openai
import pytest

from luffy_math import majority_vote
from luffy_math.vote import samples_used, vote_labels
from luffy_testing.servers import metric, openai_client_of

QUESTION = [{"role": "user", "content": "What is 20 + 22?"}]
ADAPTIVE = {"mode": "adaptive"}


def full_and_adaptive(server, n: int, vote: dict, **kwargs):
    client = openai_client_of(server)
    full = client.chat.completions.create(model="tiny", messages=QUESTION, n=n, **kwargs)
    adaptive = client.chat.completions.create(model="tiny", messages=QUESTION, n=n,
                                              extra_body={"vote": vote, "gold": "42"}, **kwargs)
    return full, adaptive


def test_adaptive_vote_response_and_seeded_samples(any_server):
    """A seeded adaptive vote draws the full vote's samples (sample i has seed + i, as vLLM's n does) and
    stops where the Beta rule, applied in index order to those samples, stops."""
    n = 8
    full, adaptive = full_and_adaptive(any_server, n, ADAPTIVE, temperature=1.0, max_tokens=40, seed=11)
    vote = adaptive.model_extra["vote"]
    k = vote["samples"]
    full_answers = [c.model_extra["answer"] for c in full.choices]
    assert vote == {"mode": "adaptive", "samples": samples_used(vote_labels(full_answers), 0.95),
                    "stopped_early": k < n, "confidence": 0.95}
    assert [c.index for c in adaptive.choices] == list(range(k))
    for mine, theirs in zip(adaptive.choices, full.choices, strict=False):
        assert mine.message.content == theirs.message.content
        assert mine.message.model_extra["reasoning_content"] == theirs.message.model_extra["reasoning_content"]
        assert mine.model_extra["answer"] == theirs.model_extra["answer"]
        assert isinstance(mine.model_extra["grade"]["correct"], bool)  # graded against the gold
    answers = [c.model_extra["answer"] for c in adaptive.choices]
    assert adaptive.model_extra["majority_answer"] == majority_vote(answers)
    assert adaptive.model_extra["majority_reason"] is None
    # usage counts every generated token: the counted choices' at least, and never more than the full vote's.
    assert adaptive.usage.prompt_tokens == full.usage.prompt_tokens
    assert adaptive.usage.completion_tokens <= full.usage.completion_tokens
    assert adaptive.usage.total_tokens == adaptive.usage.prompt_tokens + adaptive.usage.completion_tokens


def test_adaptive_vote_stream(any_server):
    client = openai_client_of(any_server)
    chunks = list(client.chat.completions.create(
        model="tiny", messages=QUESTION, n=8, temperature=1.0, max_tokens=40, seed=5, stream=True,
        stream_options={"include_usage": True}, extra_body={"vote": {**ADAPTIVE, "confidence": 0.9}}))
    assert len({c.id for c in chunks}) == 1
    last, usage = chunks[-1], chunks[-2]
    assert last.choices == [] and usage.choices == [] and usage.usage.completion_tokens > 0
    vote = last.model_extra["vote"]
    assert vote["mode"] == "adaptive" and vote["confidence"] == 0.9 and vote["stopped_early"] == (vote["samples"] < 8)
    finished = {c.index: c for ch in chunks for c in ch.choices if c.finish_reason}
    counted = [finished[i] for i in range(vote["samples"])]
    assert all(c.finish_reason in ("stop", "length") for c in counted)
    assert last.model_extra["majority_answer"] == majority_vote([c.model_extra["answer"] for c in counted])
    text = "".join(c.delta.content or "" for ch in chunks for c in ch.choices if c.index == 0)
    assert "\\boxed" in text or finished[0].model_extra["answer"] is None


def test_adaptive_completions_with_logprobs(think_server):
    """Completions too: the counted samples are the full vote's first ones, logprobs included."""
    client = openai_client_of(think_server)
    prompt = "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    kwargs = {"model": "tiny", "prompt": prompt, "n": 6, "temperature": 1.0, "seed": 3, "max_tokens": 40,
              "logprobs": 1}
    full = client.completions.create(**kwargs)
    adaptive = client.completions.create(**kwargs, extra_body={"vote": {**ADAPTIVE, "confidence": 0.8, "wave": 3}})
    vote = adaptive.model_extra["vote"]
    full_answers = [c.model_extra["answer"] for c in full.choices]
    assert vote == {"mode": "adaptive", "samples": samples_used(vote_labels(full_answers), 0.8),
                    "stopped_early": vote["samples"] < 6, "confidence": 0.8}
    assert [c.index for c in adaptive.choices] == list(range(vote["samples"]))
    for mine, theirs in zip(adaptive.choices, full.choices, strict=False):
        assert mine.text == theirs.text and mine.model_extra["answer"] == theirs.model_extra["answer"]
        assert mine.logprobs.tokens == theirs.logprobs.tokens and len(mine.logprobs.token_logprobs) > 5
    answers = [c.model_extra["answer"] for c in adaptive.choices]
    assert adaptive.model_extra["majority_answer"] == majority_vote(answers)


def test_greedy_votes_are_refused_as_vllm_refuses_the_full_vote(think_server):
    """vLLM takes ``n > 1`` only when sampling; an adaptive vote is answered the same way."""
    with pytest.raises(openai.BadRequestError, match="greedy"):
        openai_client_of(think_server).chat.completions.create(
            model="tiny", messages=QUESTION, n=4, temperature=0, max_tokens=4, extra_body={"vote": ADAPTIVE})


def test_confidence_near_one_gives_the_full_vote(think_server):
    full, adaptive = full_and_adaptive(think_server, 8, {**ADAPTIVE, "confidence": 0.999999}, temperature=1.0,
                                       max_tokens=40, seed=21)
    assert adaptive.model_extra["vote"]["samples"] == 8 and not adaptive.model_extra["vote"]["stopped_early"]
    assert adaptive.model_extra["majority_answer"] == full.model_extra["majority_answer"]
    assert [c.message.content for c in adaptive.choices] == [c.message.content for c in full.choices]
    assert adaptive.usage.completion_tokens == full.usage.completion_tokens


def test_a_settled_vote_aborts_the_running_samples(think_server):
    """All 16 samples start at once; each stops at its first ``}`` or runs on (EOS ignored) to 1000 tokens.
    Once the first samples settle the vote the long ones are aborted in the engine: nothing is left running,
    and ``usage`` is exactly what the engine generated."""
    before = metric(think_server, "vllm:generation_tokens_total")
    chunks = list(openai_client_of(think_server).chat.completions.create(
        model="tiny", messages=QUESTION, n=16, temperature=1.3, max_tokens=1000, seed=2, stop=["}"], stream=True,
        stream_options={"include_usage": True},
        extra_body={"vote": {**ADAPTIVE, "wave": 16, "confidence": 0.8}, "ignore_eos": True,
                    "include_stop_str_in_output": True}))
    assert metric(think_server, "vllm:num_requests_running") == 0
    vote = chunks[-1].model_extra["vote"]
    assert vote["stopped_early"] and vote["samples"] < 16
    ends = {c.index: c.finish_reason for ch in chunks for c in ch.choices if c.finish_reason}
    assert "abort" in ends.values() and sorted(ends) == list(range(16)), ends
    time.sleep(1.0)  # let the last iteration's tokens land in the counter
    generated = metric(think_server, "vllm:generation_tokens_total") - before
    assert chunks[-2].usage.completion_tokens == generated < 16 * 1000 / 4


def test_client_disconnect_aborts_every_sample(think_server):
    before = metric(think_server, "vllm:generation_tokens_total")
    stream = openai_client_of(think_server).chat.completions.create(
        model="tiny", messages=QUESTION, n=8, max_tokens=1000, stream=True,
        extra_body={"vote": {**ADAPTIVE, "wave": 8}, "ignore_eos": True, "min_tokens": 1000})
    for i, _ in enumerate(stream):
        if i == 20:
            break
    stream.close()
    deadline = time.monotonic() + 10
    while metric(think_server, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(think_server, "vllm:num_requests_running") == 0
    time.sleep(1.0)
    assert metric(think_server, "vllm:generation_tokens_total") - before < 8 * 1000 / 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 4, "extra_body": {"vote": {"mode": "adaptive", "confidence": 1.0}}}, "strictly between 0 and 1"),
    ({"n": 4, "extra_body": {"vote": {"mode": "adaptive", "confidence": 0}}}, "strictly between 0 and 1"),
    ({"n": 1, "extra_body": {"vote": {"mode": "adaptive"}}}, "'n' of at least 2"),
    ({"extra_body": {"vote": {"mode": "adaptive"}}}, "'n' of at least 2"),
    ({"n": 4, "extra_body": {"vote": {"mode": "weighted"}}}, "'vote.mode' must be one of adaptive"),
    ({"n": 4, "extra_body": {"vote": {"mode": "adaptive", "wave": 0}}}, "positive integer"),
    ({"n": 4, "extra_body": {"vote": {"mode": "adaptive", "budget": 3}}}, "unknown field"),
    ({"n": 4, "extra_body": {"vote": "adaptive"}}, "must be an object"),
])
def test_bad_votes_are_openai_400s(openai_client, kwargs, message):
    with pytest.raises(openai.BadRequestError, match=message) as err:
        openai_client.chat.completions.create(model="tiny", messages=QUESTION, max_tokens=4, **kwargs)
    assert err.value.status_code == 400 and err.value.body["param"] == "vote"


def test_engine_errors_pass_through(openai_client):
    """vLLM's own validation still answers, once, as for any request."""
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        openai_client.chat.completions.create(model="tiny", messages=QUESTION, n=3, max_tokens=5000,
                                              extra_body={"vote": ADAPTIVE})
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="nope", messages=QUESTION, n=3, max_tokens=4,
                                              extra_body={"vote": ADAPTIVE})
