"""Math-aware additions to vLLM's OpenAI responses, as an ASGI middleware around vLLM's own app.

vLLM does the protocol (validation, sampling, streaming, reasoning parser, usage, disconnect aborts);
this layer only adds fields that the official ``openai`` client tolerates:

- ``reasoning_content`` beside vLLM's ``reasoning`` (messages and stream deltas), the deepseek_r1 shape;
  with ``split_text`` (a tokenizer without single ``<think>``/``</think>`` tokens, so no vLLM parser) the
  layer splits the text itself (luffy_math.thinking), and the response has the same fields;
- per choice, ``answer``: the last ``\\boxed{}`` of the graded text (``\\fbox`` is not read), or null: the
  answer the "luffy" grade reads; the graded text is LUFFY's: what follows the first ``</think>``, or the
  whole output when the thought never closed (luffy_math.thinking);
- with ``n > 1``, top-level ``majority_answer`` (equivalence-aware vote, :mod:`luffy_math.vote`'s rule),
  ``majority_reason`` (null for a clear winner; ``tie`` when several answers share the most votes, the first
  seen of them being the answer; ``no_answer`` or ``timed_out`` with a null answer) and ``majority_counts``
  (votes per answer, most first; ``{}`` without answers, by exact text when the vote timed out);
- with ``"vote": {"mode": "adaptive"}`` the samples run in waves and stop once the majority is settled
  (luffy_serve.adaptive_vote: vLLM's handler serves the request, the engine calls underneath it are the
  vote's), ``vote`` says how many were used, and ``usage`` counts the aborted samples' tokens too;
- ``usage.completion_tokens_details.reasoning_tokens``: the thought's tokens over all choices
  (:mod:`luffy_serve.thought_tokens`), in the usage of a response or a stream's usage chunk;
- when the request carries ``gold`` (str or list), per choice ``grade`` (luffy_math's Grade as a dict),
  graded with ``grade_mode`` ("luffy" by default, "math_verify", or "luffy_exact" where the environment with
  LUFFY's pins exists); a grade that could not finish in time says ``timed_out: true``.

Streams get the per-choice fields on the chunk that carries that choice's ``finish_reason``, and
the ``majority_*`` fields on one extra chunk (``choices: []``) just before ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luffy_math import MODES, available_modes, boxed_answer
from luffy_math.grader import crashed_grade, timed_out_grade
from luffy_math.thinking import StreamSplit, answer_part, answer_part_parsed, split_response
from luffy_math.vote import Majority, exact_groups, tally, vote_groups
from luffy_math.workers import GradingPool

from . import math_metrics
from .adaptive_vote import ACTIVE, VoteRun, install, parses_reasoning, vote_problem, vote_spec
from .errors import error_response
from .thought_tokens import RECORDING, GeneratedTokens, ThoughtCounter, set_reasoning_tokens

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
# msgspec (a vLLM dependency) parses the per-token SSE chunks several times faster than json.
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def mode_problem(field: str, mode: object) -> str | None:
    """Why a request's grading mode cannot be served here, or None."""
    if mode not in MODES:
        return f"'{field}' must be one of {', '.join(MODES)}"
    if mode not in available_modes():
        return (f"'{field}' {mode} is not available on this server: it has no environment with LUFFY's pinned "
                "grading libraries")
    return None


class MathRequest:
    """What one request asked of the math layer, read from the JSON body vLLM also sees."""

    def __init__(self, body: dict[str, Any]):
        self.n = body.get("n") or 1
        self.gold = body.get("gold")
        self.mode = body.get("grade_mode", "luffy")
        self.vote = body.get("vote")
        self.body = body

    def problem(self) -> tuple[str, str] | None:
        """(a reason to refuse the request, the field it is about), or None."""
        gold = self.gold
        if gold is not None and not (
            isinstance(gold, str) or (isinstance(gold, list) and gold and all(isinstance(g, str) for g in gold))
        ):
            return "'gold' must be a string or a non-empty list of strings", "gold"
        if (problem := mode_problem("grade_mode", self.mode)) is not None:
            return problem, "grade_mode"
        if self.vote is not None and (problem := vote_problem(self.vote, self.body.get("n"), self.body)) is not None:
            return problem, "vote"
        return None

    @property
    def wants_vote(self) -> bool:
        return isinstance(self.n, int) and self.n > 1


class MathExtras:
    """Wrap vLLM's app: read the request, pass it on unchanged, add the math fields to the response.

    ``split_text``: vLLM runs no reasoning parser (the tokenizer has no single think tokens), so chat
    responses are split into reasoning and content here, by their text.
    """

    def __init__(self, app: ASGIApp, pool: GradingPool, vote_timeout: float = 30.0, split_text: bool = False):
        self.app = app
        self.pool = pool
        self.vote_timeout = vote_timeout
        self.split_text = split_text
        # vLLM's handlers' engine client is wrapped (adaptive votes, and the token ids thoughts are counted from)
        self.engine_wrapped = install(app)
        tokenizer = _tokenizer_of(app) if self.engine_wrapped else None
        self.thoughts = ThoughtCounter(tokenizer) if tokenizer is not None else None
        self.chat_has_thoughts = split_text or parses_reasoning(app)

    def counts_thoughts(self, is_chat: bool) -> bool:
        """Whether this route's usage gets the thought's tokens (chat: only where reasoning is split)."""
        return self.thoughts is not None and (self.chat_has_thoughts or not is_chat)

    def reasoning_tokens(self, is_chat: bool, ids: list[list[int]]) -> int:
        """The thought's tokens over the choices' generated ``ids`` (completions: closed thoughts only)."""
        assert self.thoughts is not None
        return sum(self.thoughts.count(choice, closed_only=not is_chat) for choice in ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in (CHAT, COMPLETIONS):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffer_body(receive)
        try:
            parsed = _decode(body)
        except msgspec.DecodeError:
            parsed = None
        except RecursionError:  # vLLM's own parser would fail the same way, as a 500
            await error_response(400, "The body is JSON nested too deeply.", "BadRequestError")(scope, receive, send)
            return
        if not isinstance(parsed, dict):  # vLLM answers malformed bodies itself
            await self.app(scope, receive, send)
            return
        request = MathRequest(parsed)
        if (problem := request.problem()) is not None:
            await error_response(400, problem[0], "BadRequestError", problem[1])(scope, receive, send)
            return
        is_chat = scope["path"] == CHAT
        rewriter = _StreamRewriter if parsed.get("stream") else _JsonRewriter
        if request.vote is None:
            # vLLM's handler runs in this context: its engine calls record the ids generated
            recording = GeneratedTokens() if self.counts_thoughts(is_chat) else None
            token = RECORDING.set(recording)
            try:
                await self.app(scope, receive, rewriter(self, request, is_chat, send, recording=recording).send)
            finally:
                RECORDING.reset(token)
            return
        if not self.engine_wrapped:
            await error_response(501, "adaptive votes need vLLM's OpenAI handlers", "NotImplementedError",
                                 "vote")(scope, receive, send)
            return
        run = VoteRun(self, vote_spec(request.vote, request.n), request.n, is_chat, parses_reasoning(self.app))
        token = ACTIVE.set(run)  # vLLM's handler runs in this context: its engine calls become the vote's
        try:
            await self.app(scope, receive, rewriter(self, request, is_chat, send, run).send)
        finally:
            ACTIVE.reset(token)

    async def vote(self, answers: list[str | None], route: str) -> Majority:
        """The equivalence-aware vote over the choices' answers; when it could not finish, no answer and the
        counts by exact text (reason ``timed_out``)."""
        groups, timed_out = await self.vote_groups(answers)
        return self.voted(groups, timed_out, route)

    @staticmethod
    def voted(groups: list[tuple[str, int]], timed_out: str | None, route: str) -> Majority:
        """The Majority of ``groups`` (:meth:`vote_groups`' result), counted in the metrics under ``route``."""
        majority = tally(groups)
        if timed_out:
            majority = Majority(None, timed_out, majority.counts)
        math_metrics.count_vote(route, majority)
        return majority

    async def vote_groups(self, answers: list[str | None]) -> tuple[list[tuple[str, int]], str | None]:
        """(the answers' equivalence groups with their counts, None), or exact-text groups and "timed_out"
        when the equivalence-aware grouping could not finish."""
        given = [a for a in answers if a is not None]
        if len(set(given)) <= 1:  # one text (or none): no worker needed
            return exact_groups(given), None
        try:
            future = self.pool.submit(vote_groups, list(answers), items=len(given),
                                      on_timeout=unfinished_grouping, on_crash=unfinished_grouping)
            groups = await asyncio.wait_for(asyncio.wrap_future(future), self.vote_timeout)
        except Exception:  # a vote never breaks a response
            groups = None
        return (groups, None) if groups is not None else (exact_groups(given), "timed_out")

    async def grade(self, request: MathRequest, text: str, route: str) -> dict[str, Any]:
        """The choice's grade against the request's gold, as a dict; ``timed_out`` when it did not finish."""
        started = time.monotonic()
        try:
            graded = await asyncio.wait_for(
                asyncio.wrap_future(self.pool.submit_grade(text, request.gold, request.mode)), self.vote_timeout)
        except asyncio.TimeoutError:
            graded = timed_out_grade(text, request.mode)
        except Exception:  # the pool is closing or broken: the grade says it failed, the response goes on
            graded = crashed_grade(text, request.mode)
        math_metrics.observe_grading(request.mode, route, time.monotonic() - started, 1, int(graded.timed_out))
        return asdict(graded)


def unfinished_grouping() -> None:
    """What a grouping that was killed (past its time, or with its worker) resolves to."""
    return None


def _tokenizer_of(app: ASGIApp) -> Any:
    """The tokenizer of vLLM's engine behind ``app`` (None when it has none to give)."""
    engine = getattr(getattr(app, "state", None), "engine_client", None)
    renderer = getattr(engine, "renderer", None)
    try:
        return renderer.get_tokenizer() if renderer is not None else None
    except Exception:  # a model served without a tokenizer (skip_tokenizer_init): nothing to count with
        return None


def _majority_fields(target: dict[str, Any], majority: Majority) -> None:
    target["majority_answer"] = majority.answer
    target["majority_reason"] = majority.reason
    target["majority_counts"] = majority.counts


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


def _set_reasoning(fields: dict[str, Any], reasoning: str | None) -> None:
    """vLLM's ``reasoning`` and the deepseek_r1 name ``reasoning_content``, both with the same text."""
    fields["reasoning"] = reasoning
    fields["reasoning_content"] = reasoning


def _choice_text(choice: dict[str, Any], is_chat: bool, split_text: bool) -> str:
    """The text to grade of one non-stream choice (its message is split or aliased in place)."""
    if not is_chat:
        return answer_part(choice.get("text") or "")
    message = choice.get("message") or {}
    if split_text:
        whole = message.get("content") or ""
        reasoning, message["content"] = split_response(whole)
        _set_reasoning(message, reasoning)
        return answer_part(whole)
    if "reasoning" in message:
        _set_reasoning(message, message["reasoning"])
    # The parser leaves content null when the thought never closed: LUFFY then grades the whole output.
    return answer_part_parsed(message.get("reasoning"), message.get("content"))


class _JsonRewriter:
    """Hold a non-stream 200 response, add the fields, send it with the new length."""

    def __init__(self, extras: MathExtras, request: MathRequest, is_chat: bool, send: Send,
                 vote: VoteRun | None = None, recording: GeneratedTokens | None = None):
        self.extras, self.request, self.is_chat, self.downstream = extras, request, is_chat, send
        self.vote_run, self.recording = vote, recording
        self.route = CHAT if is_chat else COMPLETIONS
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
            text = _choice_text(choice, self.is_chat, self.extras.split_text)
            choice["answer"] = boxed_answer(text)
            texts.append(text)
            answers.append(choice["answer"])
        if self.request.gold is not None:
            grades = await asyncio.gather(*(self.extras.grade(self.request, t, self.route) for t in texts))
            for choice, grade in zip(choices, grades, strict=True):
                choice["grade"] = grade
        if self.vote_run is not None:  # the vote's own grouping of the counted samples
            _majority_fields(payload, self.extras.voted(*self.vote_run.counted_groups(), self.route))
            payload["vote"] = self.vote_run.vote_field()
        elif self.request.wants_vote:
            _majority_fields(payload, await self.extras.vote(answers, self.route))
        if isinstance(payload.get("usage"), dict):
            _fix_usage(self.extras, self.is_chat, payload["usage"], self.vote_run, self.recording)
        return _encode(payload)


def _fix_usage(extras: MathExtras, is_chat: bool, usage: dict[str, Any], run: VoteRun | None,
               recording: GeneratedTokens | None) -> None:
    """An adaptive vote's usage counts every sample's tokens; reasoning_tokens counts the thoughts' tokens."""
    if run is not None:
        run.usage(usage)
        if extras.counts_thoughts(is_chat):
            set_reasoning_tokens(usage, extras.reasoning_tokens(is_chat, run.generated_ids()))
    elif recording is not None:
        set_reasoning_tokens(usage, extras.reasoning_tokens(is_chat, list(recording.ids.values())))


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning: str | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    text: str | None = None  # completions
    delta: _Delta | None = None  # chat
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    """The few fields of a stream chunk the math layer reads; msgspec skips the rest without building it."""

    id: str | None = None
    object: str | None = None
    created: int | None = None
    model: str | None = None
    choices: list[_Choice] = []


_peek = msgspec.json.Decoder(_Chunk).decode


class _Edit(msgspec.Struct):
    """How one choice's delta changes: ``reasoning`` (also as ``reasoning_content``) and ``content``, the
    latter only when ``split`` (the raw content is replaced by the split pieces)."""

    reasoning: str | None
    content: str | None = None
    split: bool = False


def _insert_alias(data: bytes, key: bytes, reasoning: str) -> bytes:
    """``data`` with ``"reasoning_content": reasoning, "reasoning":`` in place of its first ``"KEY":``.

    The bytes ``"KEY":`` cannot occur inside a JSON string (its quotes would be escaped), so the first one is
    the key itself; with one choice per chunk only the delta has it. This saves decoding and re-encoding the
    chunk on every token.
    """
    return data.replace(b'"' + key + b'":', b'"reasoning_content":' + _encode(reasoning) + b',"reasoning":', 1)


class _StreamRewriter:
    """Pass SSE events through, adding ``answer`` at each choice's finish and a summary before [DONE].

    Each chunk is read once into :class:`_Chunk`; a chunk that needs no change is sent as vLLM wrote it, one
    whose delta only gains a reasoning alias is patched as bytes, and the rest (a choice's finish, a split
    tag, several choices) are decoded, changed and encoded again.
    """

    def __init__(self, extras: MathExtras, request: MathRequest, is_chat: bool, send: Send,
                 vote: VoteRun | None = None, recording: GeneratedTokens | None = None):
        self.extras, self.request, self.is_chat, self.downstream = extras, request, is_chat, send
        self.vote_run, self.recording = vote, recording
        self.route = CHAT if is_chat else COMPLETIONS
        self.split_text = is_chat and extras.split_text
        self.passthrough = False
        self.pending = b""
        self.texts: dict[int, list[str]] = {}  # per choice: the raw text (completions, split chat) or content
        self.reasoning: dict[int, list[str]] = {}  # per choice: vLLM parser's reasoning deltas
        self.splits: dict[int, StreamSplit] = {}
        self.answers: dict[int, str | None] = {}
        self.meta: _Chunk | None = None

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
        body = message.get("body", b"")
        if not self.pending and body.find(b"\n\n") == len(body) - 2:  # one whole event: vLLM's usual message
            event = body[:-2]
            changed = await self._event(event)
            await self.downstream(message if changed is event else {**message, "body": changed + b"\n\n"})
            return
        self.pending += body
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
            if self.request.wants_vote and self.meta is not None:
                prefix = b"data: " + _encode(await self._vote_chunk()) + b"\n\n"
            return prefix + event
        try:
            peek = _peek(data)
        except msgspec.DecodeError:
            return event
        if not peek.choices:
            if (self.vote_run is not None or self.recording is not None) and b'"usage"' in data:
                chunk = _decode(data)  # the usage chunk: aborted samples count too, and the thoughts' tokens
                if isinstance(chunk.get("usage"), dict):
                    _fix_usage(self.extras, self.is_chat, chunk["usage"], self.vote_run, self.recording)
                    return b"data: " + _encode(chunk)
            return event
        self.meta = peek
        edits = [self._take(choice) for choice in peek.choices]
        if all(choice.finish_reason is None for choice in peek.choices):
            if all(edit is None for edit in edits):
                return event
            edit = edits[0]
            if len(edits) == 1 and edit.reasoning is not None and (not edit.split or edit.content is None):
                return b"data: " + _insert_alias(data, b"content" if edit.split else b"reasoning", edit.reasoning)
        chunk = _decode(data)
        for choice, seen, edit in zip(chunk["choices"], peek.choices, edits, strict=True):
            if edit is not None:
                self._apply(choice.setdefault("delta", {}), edit)
            if seen.finish_reason is not None:
                text = self._finish(choice, seen.index)
                if self.request.gold is not None and seen.finish_reason != "abort":
                    choice["grade"] = await self.extras.grade(self.request, text, self.route)
        return b"data: " + _encode(chunk)

    def _take(self, choice: _Choice) -> _Edit | None:
        """Record a choice's delta text; return how its delta must change (None: it stays as it is)."""
        parts = self.texts.setdefault(choice.index, [])
        if not self.is_chat:
            if choice.text:
                parts.append(choice.text)
            return None
        delta = choice.delta or _Delta()
        if self.split_text:
            if not delta.content:
                return None
            parts.append(delta.content)
            reasoning, content = self.splits.setdefault(choice.index, StreamSplit()).feed(delta.content)
            if content == delta.content:
                return None  # all of it is content, as vLLM wrote it
            return _Edit(reasoning or None, content or None, split=True)
        if delta.content:
            parts.append(delta.content)
        if delta.reasoning is None:
            return None
        self.reasoning.setdefault(choice.index, []).append(delta.reasoning)
        return _Edit(delta.reasoning)

    @staticmethod
    def _apply(delta: dict[str, Any], edit: _Edit) -> None:
        if edit.split:
            delta.pop("content", None)
            if edit.content is not None:
                delta["content"] = edit.content
        if edit.reasoning is not None:
            _set_reasoning(delta, edit.reasoning)

    def _finish(self, choice: dict[str, Any], index: int) -> str:
        """At a choice's finish: flush a held-back split, set its ``answer``; return the text to grade."""
        text = "".join(self.texts.get(index, []))
        if self.split_text and index in self.splits:
            held, _ = self.splits[index].finish()
            if held:
                delta = choice.setdefault("delta", {})
                _set_reasoning(delta, (delta.get("reasoning") or "") + held)
        if self.is_chat and not self.split_text:
            # With vLLM's parser the content is what follows </think>; an unclosed thought is graded whole.
            text = answer_part_parsed("".join(self.reasoning.get(index, [])), text)
        else:
            text = answer_part(text)
        answer = boxed_answer(text)
        self.answers[index] = answer
        choice["answer"] = answer
        return text

    async def _vote_chunk(self) -> dict[str, Any]:
        assert self.meta is not None
        chunk: dict[str, Any] = {k: getattr(self.meta, k) for k in ("id", "object", "created", "model")}
        chunk["choices"] = []
        if self.vote_run is not None:  # the vote's own grouping of the counted samples
            _majority_fields(chunk, self.extras.voted(*self.vote_run.counted_groups(), self.route))
            chunk["vote"] = self.vote_run.vote_field()
        else:
            answers = [self.answers.get(i) for i in sorted(self.texts)]
            _majority_fields(chunk, await self.extras.vote(answers, self.route))
        return chunk
