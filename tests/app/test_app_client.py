"""The demo's endpoint client against the session's luffy-serve: real HTTP through the openai client."""

from __future__ import annotations

import asyncio

import pytest

from app.client import Completion, Endpoint, EndpointError, Sample, api_root
from luffy_math import answer_part, majority_vote, split_response
from luffy_math.thinking import THINK_END

QUESTION = "What is 6*7?"  # greedy, both tiny checkpoints answer this one with a boxed 42


def collect(endpoint: Endpoint, temperature: float, n: int = 1,
            seed: int | None = None) -> tuple[list[tuple[int, int]], Completion | None]:
    """Stream one question; return the (reasoning, content) lengths seen after each chunk and the result."""

    async def run():
        sizes = []
        completion = None
        async for completion in endpoint.stream_chat(QUESTION, temperature=temperature, max_tokens=128, n=n,
                                                     seed=seed):
            sizes.append((len(completion.samples[0].reasoning), len(completion.samples[0].content)))
        await endpoint.close()
        return sizes, completion

    return asyncio.run(run())


def test_stream_splits_thinking_from_answer(luffy_server) -> None:
    endpoint = Endpoint(luffy_server.base_url, api_key=luffy_server.api_key)
    sizes, completion = collect(endpoint, temperature=0.0)
    assert endpoint.model == luffy_server.model  # discovered through /v1/models
    assert len(sizes) >= 5 and sizes == sorted(sizes)  # many chunks, each adding text
    sample = completion.samples[0]
    assert sample.done and sample.finish_reason == "stop"
    assert "think" in sample.reasoning.lower() and "</think>" not in sample.reasoning
    assert "\\boxed{42}" in sample.content
    assert sample.server_answer == "42"  # luffy-serve's extra field on the choice's last chunk


def test_several_samples_and_the_majority(luffy_server) -> None:
    """n > 1 needs sampling (vLLM refuses n > 1 at temperature 0); a low temperature and a seed make it certain:
    the checkpoint's greedy answer, 42, in every choice, and the server's majority_answer says so."""
    endpoint = Endpoint(luffy_server.base_url, api_key=luffy_server.api_key, model=luffy_server.model)
    _, completion = collect(endpoint, temperature=0.2, n=3, seed=7)
    assert len(completion.samples) == 3 and all(s.done for s in completion.samples)
    assert [s.answer for s in completion.samples] == ["42", "42", "42"]
    assert completion.server_majority == "42"  # luffy-serve's top-level majority_answer


def test_a_seed_reproduces_sampled_choices(luffy_server) -> None:
    """At temperature 1 the same seed gives the same n choices, and the server's vote is the client's."""
    runs = [collect(Endpoint(luffy_server.base_url, api_key=luffy_server.api_key, model=luffy_server.model),
                    temperature=1.0, n=4, seed=1234)[1] for _ in range(2)]
    first, second = ([s.content for s in c.samples] for c in runs)
    assert first == second and len(set(first)) >= 1 and all(first)
    answers = [s.answer for s in runs[0].samples]
    assert runs[0].server_majority == majority_vote(answers) == runs[1].server_majority


def test_majority_of_mixed_and_missing_answers() -> None:
    """The client's own vote (for servers without majority_answer): the most frequent answer, None never wins."""
    mixed = Completion(samples=[Sample(content=f"$\\boxed{{{a}}}$") for a in ("24", "42", "42")])
    assert mixed.majority_answer == "42"
    assert Completion(samples=[Sample(content="no box"), Sample(content="none")]).majority_answer is None
    assert Completion(samples=[Sample(content="no box"), Sample(content="$\\boxed{7}$")]).majority_answer == "7"


def test_grade_goes_through_the_server(luffy_server) -> None:
    endpoint = Endpoint(f"{luffy_server.base_url}/v1/", api_key=luffy_server.api_key)
    responses = ["The answer is $\\boxed{42}$.", "The answer is $\\boxed{24}$.", "So $\\boxed{42.0}$."]
    report = asyncio.run(endpoint.grade(responses, "42"))
    assert report.by_server
    assert [g.correct for g in report.grades] == [True, False, True]
    assert [g.extracted for g in report.grades][:2] == ["42", "24"]
    assert report.majority_answer in ("42", "42.0")


def test_wrong_key_is_a_clear_error(luffy_server) -> None:
    endpoint = Endpoint(luffy_server.base_url, api_key="not-the-key", model=luffy_server.model)
    with pytest.raises(EndpointError, match="answered 401"):
        collect(endpoint, temperature=0.0)


def test_down_endpoint_is_a_clear_error(dead_url: str) -> None:
    endpoint = Endpoint(dead_url)
    with pytest.raises(EndpointError, match="Cannot reach the model endpoint"):
        collect(endpoint, temperature=0.0)


def test_plain_endpoint_fallbacks() -> None:
    """A server without a reasoning parser or the answer field: split and extract on the client."""
    sample = Sample(content="Let me think.\n</think>\n\nSo $\\boxed{7}$.")
    assert sample.parts() == ("Let me think.\n", "\n\nSo $\\boxed{7}$.")
    assert sample.answer == "7"
    assert Sample(content="no tags, $\\boxed{5}$").parts() == ("", "no tags, $\\boxed{5}$")
    assert Sample(content="$\\boxed{1}$", server_answer="2").answer == "2"  # the server's answer wins


@pytest.mark.parametrize("text", ["no tags, $\\boxed{5}$", "<think>unfinished", "  <think>x</think>y", "a</think>",
                                  "a</think>b</think>c", "hm</think>quoted <think> \\boxed{1}", ""])
def test_a_plain_endpoint_shows_the_thought_only_once_it_closed(text: str) -> None:
    """Without a server split: the thought once ``</think>`` came; the answer is the text LUFFY grades, all of
    it before that (an endpoint without a reasoning split may serve a model that does not think)."""
    thought = split_response(text)[0] if THINK_END in text else ""
    assert Sample(content=text).parts() == (thought, answer_part(text))


def test_api_root_accepts_both_url_forms() -> None:
    assert api_root("http://h:8000/v1/") == api_root("http://h:8000") == "http://h:8000"
