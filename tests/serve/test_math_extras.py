"""The server's math layer (luffy_serve.math_extras) on a stub ASGI app standing in for vLLM's: no engine.

One extraction: the ``answer`` field is what the "luffy" grade reads, so a response boxed only with ``\\fbox``
has no answer and an unformatted grade, and ``\\boxed`` gives both.
"""

from __future__ import annotations

import asyncio
import json

import pytest

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
