"""The demo's endpoint client against the session's luffy-serve: real HTTP through the openai client."""

from __future__ import annotations

import asyncio

import pytest

from app.client import Endpoint, EndpointError, Sample, api_root

QUESTION = "What is 6*7?"  # greedy, the tiny checkpoint answers this one with a boxed 42


def collect(endpoint: Endpoint, temperature: float, n: int = 1) -> tuple[list[tuple[int, int]], Sample | None, list]:
    """Stream one question; return the (reasoning, content) lengths seen after each chunk and the result."""

    async def run():
        sizes = []
        completion = None
        async for completion in endpoint.stream_chat(QUESTION, temperature=temperature, max_tokens=128, n=n):
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
    endpoint = Endpoint(luffy_server.base_url, api_key=luffy_server.api_key, model=luffy_server.model)
    _, completion = collect(endpoint, temperature=1.0, n=3)
    assert len(completion.samples) == 3 and all(s.done for s in completion.samples)
    answers = [s.answer for s in completion.samples]
    if any(a is not None for a in answers):
        assert completion.server_majority in answers  # luffy-serve's top-level majority_answer


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


def test_api_root_accepts_both_url_forms() -> None:
    assert api_root("http://h:8000/v1/") == api_root("http://h:8000") == "http://h:8000"
