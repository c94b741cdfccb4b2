"""The server's math layer (luffy_serve.math_extras) on a stub ASGI app standing in for vLLM's: no engine.

One extraction: the ``answer`` field is what the "luffy" grade reads, so a response boxed only with ``\\fbox``
has no answer and an unformatted grade, and ``\\boxed`` gives both. Votes say ties (``majority_reason: "tie"``
and ``majority_counts``), in a response and in a stream's vote chunk, each counted by outcome in the metrics.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY

from luffy_math.workers import GradingPool
from luffy_serve.math_extras import CHAT, COMPLETIONS, MathExtras


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout=5.0) as shared:
        yield shared


def stub_app(body: dict, stream_chunks: list[dict] | None = None):
    """vLLM's place: answers every request with ``body`` (JSON), or with ``stream_chunks`` as SSE."""

    async def app(scope, receive, send):
        await receive()
        if stream_chunks is None:
            data = json.dumps(body).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data, "more_body": False})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in stream_chunks:
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    return app


def call(extras: MathExtras, path: str, request: dict) -> bytes:
    async def run() -> bytes:
        sent = [{"type": "http.request", "body": json.dumps(request).encode(), "more_body": False}]
        out: list[bytes] = []

        async def receive():
            return sent.pop(0) if sent else {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        scope = {"type": "http", "method": "POST", "path": path, "headers": []}
        await extras(scope, receive, send)
        return b"".join(out)

    return asyncio.run(run())


def events(raw: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.decode().split("\n\n")
            if line.startswith("data: ") and line != "data: [DONE]"]


TEXTS = {r"\fbox{42}": (None, False), r"\boxed{42}": ("42", True)}


@pytest.mark.parametrize("box", list(TEXTS))
def test_completion_answer_and_grade_read_the_same_box(pool: GradingPool, box: str) -> None:
    answer, formatted = TEXTS[box]
    body = {"object": "text_completion", "choices": [{"index": 0, "text": f"Think.</think> So {box}.",
                                                      "finish_reason": "stop"}]}
    out = json.loads(call(MathExtras(stub_app(body), pool), COMPLETIONS, {"prompt": "q", "gold": "42"}))
    choice = out["choices"][0]
    assert choice["answer"] == answer
    assert choice["grade"]["formatted"] is formatted and choice["grade"]["correct"] is formatted
    assert choice["grade"]["extracted"] == answer


@pytest.mark.parametrize("box", list(TEXTS))
def test_chat_split_by_text_json_and_stream(pool: GradingPool, box: str) -> None:
    answer, formatted = TEXTS[box]
    text = f"Let me think.\n</think>\n\nIt is {box}."
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                      "finish_reason": "stop"}]}
    extras = MathExtras(stub_app(body), pool, split_text=True)
    out = json.loads(call(extras, CHAT, {"messages": [], "gold": "42"}))
    choice = out["choices"][0]
    assert choice["message"]["reasoning_content"] == "Let me think.\n"
    assert choice["answer"] == answer and choice["grade"]["formatted"] is formatted

    pieces = [text[:9], text[9:20], text[20:]]
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in pieces]
    chunks[-1]["choices"][0]["finish_reason"] = "stop"
    streamed = events(call(MathExtras(stub_app({}, chunks), pool, split_text=True), CHAT,
                           {"messages": [], "gold": "42", "stream": True}))
    last = streamed[-1]["choices"][0]
    assert last["answer"] == answer and last["grade"]["formatted"] is formatted


def test_vllm_parser_output_of_an_unclosed_thought_is_graded_whole(pool: GradingPool) -> None:
    """vLLM's parser gives content None when the thought never closed: its reasoning is the graded text."""
    body = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "reasoning": r"still thinking \boxed{42}", "content": None}}]}
    out = json.loads(call(MathExtras(stub_app(body), pool), CHAT, {"messages": [], "gold": "42"}))
    choice = out["choices"][0]
    assert choice["answer"] == "42" and choice["grade"]["correct"]
    assert choice["message"]["reasoning_content"] == r"still thinking \boxed{42}"


def votes(route: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("luffy_votes_total", {"route": route, "outcome": outcome}) or 0.0


def chat_body(*answers: str | None) -> dict:
    return {"object": "chat.completion", "choices": [
        {"index": i, "finish_reason": "stop", "message": {"role": "assistant", "reasoning": "hmm",
                                                          "content": f"So \\boxed{{{a}}}." if a else "No idea."}}
        for i, a in enumerate(answers)]}


@pytest.mark.parametrize(("answers", "fields", "outcome"), [
    (("24", "42"), {"majority_answer": "24", "majority_reason": "tie", "majority_counts": {"24": 1, "42": 1}}, "tie"),
    (("1/2", "3", "0.5"), {"majority_answer": "1/2", "majority_reason": None, "majority_counts": {"1/2": 2, "3": 1}},
     "majority"),
    ((None, None), {"majority_answer": None, "majority_reason": "no_answer", "majority_counts": {}}, "no_answer"),
])
def test_chat_vote_fields(pool: GradingPool, answers, fields, outcome) -> None:
    before = votes(CHAT, outcome)
    out = json.loads(call(MathExtras(stub_app(chat_body(*answers)), pool), CHAT, {"messages": [], "n": len(answers)}))
    assert {k: out[k] for k in fields} == fields
    assert votes(CHAT, outcome) == before + 1


def test_stream_vote_chunk_says_the_tie(pool: GradingPool) -> None:
    chunks = [{"id": "c", "object": "text_completion", "created": 0, "model": "m",
               "choices": [{"index": i, "text": f"</think> \\boxed{{{a}}}", "finish_reason": "stop"}]}
              for i, a in enumerate(["7", "8", "8", "7"])]
    before = votes(COMPLETIONS, "tie")
    streamed = events(call(MathExtras(stub_app({}, chunks), pool), COMPLETIONS, {"prompt": "q", "n": 4,
                                                                                 "stream": True}))
    last = streamed[-1]
    assert last["choices"] == [] and last["majority_answer"] == "7"
    assert last["majority_reason"] == "tie" and last["majority_counts"] == {"7": 2, "8": 2}
    assert votes(COMPLETIONS, "tie") == before + 1
