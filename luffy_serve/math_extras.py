"""Math-aware additions to vLLM's OpenAI responses, as an ASGI middleware around vLLM's own app.

vLLM does the protocol (validation, sampling, streaming, reasoning parser, usage, disconnect aborts);
this layer only adds fields that the official ``openai`` client tolerates:

- ``reasoning_content`` beside vLLM's ``reasoning`` (messages and stream deltas), the deepseek_r1 shape;
- per choice, ``answer``: the last ``\\boxed{}`` of the answer part (after ``</think>``), or null;
- with ``n > 1``, top-level ``majority_answer`` (equivalence-aware vote);
- when the request carries ``gold`` (str or list), per choice ``grade`` (luffy_math's Grade as a dict),
  graded with ``grade_mode`` ("luffy" by default, or "math_verify") on the answer part.

Streams get the per-choice fields on the chunk that carries that choice's ``finish_reason``, and
``majority_answer`` on one extra chunk (``choices: []``) just before ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luffy_math import GradingPool, extract_answer, split_reasoning

from .errors import error_response

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
GRADE_MODES = ("luffy", "math_verify")
# msgspec (a vLLM dependency) parses the per-token SSE chunks several times faster than json.
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def answer_of(text: str | None, *, split: bool) -> str | None:
    """The final answer of a choice's text; ``split`` drops reasoning up to ``</think>`` first."""
    if not text:
        return None
    if split:
        text = split_reasoning(text)[1]
    return extract_answer(text)


class MathRequest:
    """What one request asked of the math layer, read from the JSON body vLLM also sees."""

    def __init__(self, body: dict[str, Any]):
        self.n = body.get("n") or 1
        self.gold = body.get("gold")
        self.mode = body.get("grade_mode", "luffy")

    def problem(self) -> str | None:
        """A reason to refuse the request, or None."""
        gold = self.gold
        if gold is not None and not (
            isinstance(gold, str) or (isinstance(gold, list) and gold and all(isinstance(g, str) for g in gold))
        ):
            return "'gold' must be a string or a non-empty list of strings"
        if self.mode not in GRADE_MODES:
            return f"'grade_mode' must be one of {', '.join(GRADE_MODES)}"
        return None

    @property
    def wants_vote(self) -> bool:
        return isinstance(self.n, int) and self.n > 1


class MathExtras:
    """Wrap vLLM's app: read the request, pass it on unchanged, add the math fields to the response."""

    def __init__(self, app: ASGIApp, pool: GradingPool, vote_timeout: float = 30.0):
        self.app = app
        self.pool = pool
        self.vote_timeout = vote_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in (CHAT, COMPLETIONS):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffer_body(receive)
        try:
            parsed = _decode(body)
        except msgspec.DecodeError:
            parsed = None
        if not isinstance(parsed, dict):  # vLLM answers malformed bodies itself
            await self.app(scope, receive, send)
            return
        request = MathRequest(parsed)
        if (problem := request.problem()) is not None:
            await error_response(400, problem, "BadRequestError", "gold")(scope, receive, send)
            return
        is_chat = scope["path"] == CHAT
        if parsed.get("stream"):
            await self.app(scope, receive, _StreamRewriter(self, request, is_chat, send).send)
        else:
            await self.app(scope, receive, _JsonRewriter(self, request, is_chat, send).send)

    async def vote(self, answers: list[str | None]) -> str | None:
        """Equivalence-aware majority over the choices' answers (None when it cannot be decided in time)."""
        return await self._wait(self.pool.submit_vote(answers))

    async def grade(self, request: MathRequest, text: str) -> dict[str, Any] | None:
        """The choice's grade against the request's gold, as a dict (None if grading failed)."""
        result = await self._wait(self.pool.submit_grade(text, request.gold, request.mode))
        return asdict(result) if result is not None else None

    async def _wait(self, future) -> Any:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.vote_timeout)
        except Exception:  # a vote or a grade never breaks a response
            return None


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and give back a receive that replays it, then goes on live
    (so vLLM still sees ``http.disconnect`` and aborts the engine request)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _choice_text(choice: dict[str, Any], is_chat: bool) -> tuple[str, str | None]:
    """(text to grade, answer) of one non-stream choice."""
    if is_chat:
        message = choice.get("message") or {}
        if "reasoning" in message:
            message["reasoning_content"] = message["reasoning"]
        content = message.get("content") or ""
        return content, answer_of(content, split=False)
    text = choice.get("text") or ""
    return split_reasoning(text)[1], answer_of(text, split=True)


class _JsonRewriter:
    """Hold a non-stream 200 response, add the fields, send it with the new length."""

    def __init__(self, extras: MathExtras, request: MathRequest, is_chat: bool, send: Send):
        self.extras, self.request, self.is_chat, self.downstream = extras, request, is_chat, send
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.passthrough = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.passthrough = message["status"] != 200
            if self.passthrough:
                await self.downstream(message)
            else:
                self.start = message
            return
        if self.passthrough or message["type"] != "http.response.body":
            await self.downstream(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = await self._rewrite(b"".join(self.chunks))
        assert self.start is not None
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.downstream({**self.start, "headers": headers})
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    async def _rewrite(self, raw: bytes) -> bytes:
        try:
            payload = _decode(raw)
        except msgspec.DecodeError:
            return raw
        choices = payload.get("choices") or []
        texts, answers = [], []
        for choice in choices:
            text, answer = _choice_text(choice, self.is_chat)
            choice["answer"] = answer
            texts.append(text)
            answers.append(answer)
        if self.request.gold is not None:
            grades = await asyncio.gather(*(self.extras.grade(self.request, t) for t in texts))
            for choice, grade in zip(choices, grades, strict=True):
                choice["grade"] = grade
        if self.request.wants_vote:
            payload["majority_answer"] = await self.extras.vote(answers)
        return _encode(payload)


class _StreamRewriter:
    """Pass SSE events through, adding ``answer`` at each choice's finish and a summary before [DONE]."""

    def __init__(self, extras: MathExtras, request: MathRequest, is_chat: bool, send: Send):
        self.extras, self.request, self.is_chat, self.downstream = extras, request, is_chat, send
        self.passthrough = False
        self.pending = b""
        self.texts: dict[int, list[str]] = {}
        self.answers: dict[int, str | None] = {}
        self.last_chunk: dict[str, Any] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            self.passthrough = message["status"] != 200 or b"text/event-stream" not in headers.get(
                b"content-type", b""
            )
            await self.downstream(message)
            return
        if self.passthrough or message["type"] != "http.response.body":
            await self.downstream(message)
            return
        self.pending += message.get("body", b"")
        out: list[bytes] = []
        while b"\n\n" in self.pending:
            event, self.pending = self.pending.split(b"\n\n", 1)
            out.append(await self._event(event) + b"\n\n")
        more = message.get("more_body", False)
        if not more and self.pending:
            out.append(self.pending)
            self.pending = b""
        if out or not more:
            await self.downstream({"type": "http.response.body", "body": b"".join(out), "more_body": more})

    async def _event(self, event: bytes) -> bytes:
        if not event.startswith(b"data: "):
            return event
        data = event[6:]
        if data.strip() == b"[DONE]":
            prefix = b""
            if self.request.wants_vote and self.last_chunk is not None:
                prefix = b"data: " + _encode(await self._vote_chunk()) + b"\n\n"
            return prefix + event
        try:
            chunk = _decode(data)
        except msgspec.DecodeError:
            return event
        if not isinstance(chunk, dict) or not chunk.get("choices"):
            return event
        self.last_chunk = chunk
        changed = False
        for choice in chunk["choices"]:
            changed |= self._take(choice)
            if choice.get("finish_reason") is not None:
                changed = True
                text = self._finish(choice)
                if self.request.gold is not None:
                    choice["grade"] = await self.extras.grade(self.request, text)
        # Most chunks pass through as vLLM wrote them; only changed ones are serialized again.
        return b"data: " + _encode(chunk) if changed else event

    def _take(self, choice: dict[str, Any]) -> bool:
        """Record a choice's delta text; add the ``reasoning_content`` alias. True if the choice changed."""
        parts = self.texts.setdefault(choice.get("index", 0), [])
        if not self.is_chat:
            if choice.get("text"):
                parts.append(choice["text"])
            return False
        delta = choice.get("delta") or {}
        if delta.get("content"):
            parts.append(delta["content"])
        if "reasoning" in delta:
            delta["reasoning_content"] = delta["reasoning"]
            return True
        return False

    def _finish(self, choice: dict[str, Any]) -> str:
        """At a choice's finish: set its ``answer``; return the text to grade."""
        index = choice.get("index", 0)
        text = "".join(self.texts[index])
        answer = answer_of(text, split=not self.is_chat)
        self.answers[index] = answer
        choice["answer"] = answer
        return text if self.is_chat else split_reasoning(text)[1]

    async def _vote_chunk(self) -> dict[str, Any]:
        assert self.last_chunk is not None
        answers = [self.answers.get(i) for i in sorted(self.texts)]
        chunk = {k: self.last_chunk[k] for k in ("id", "object", "created", "model") if k in self.last_chunk}
        chunk["choices"] = []
        chunk["majority_answer"] = await self.extras.vote(answers)
        return chunk
