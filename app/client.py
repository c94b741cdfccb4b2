"""Talks to an OpenAI-compatible endpoint (luffy-serve, or any vLLM server) for the demo.

Streaming goes through the official ``openai`` client. luffy-serve adds per-choice ``answer`` and a
top-level ``majority_answer`` (with ``majority_reason`` and ``majority_counts``: a tie says so) to its chunks and offers ``POST /v1/grade``; a plain endpoint lacks them, so
the luffy_math fallbacks below keep the demo useful there too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import openai

from luffy_math import boxed_answer, grade
from luffy_math.thinking import THINK_END, answer_part, answer_part_parsed, split_response
from luffy_math.vote import Majority, majority


class EndpointError(RuntimeError):
    """The endpoint is down or refused the request; the message is meant for the user."""


@dataclass
class Sample:
    """One choice of a streamed chat completion, as received so far."""

    reasoning: str = ""  # from delta.reasoning_content (or vLLM's newer delta.reasoning)
    content: str = ""  # from delta.content
    server_answer: str | None = None  # the server's `answer` field, sent on the choice's last chunk
    finish_reason: str | None = None

    def parts(self) -> tuple[str, str]:
        """(thinking, answer text). Split here at ``</think>`` when the server did not split.

        Without a ``</think>`` all of the text is the answer, as LUFFY grades it (:func:`answer_part`): an
        endpoint without a reasoning split may serve a model that does not think."""
        if self.reasoning:
            return self.reasoning, self.content
        if THINK_END not in self.content:
            return "", self.content
        thinking, answer = split_response(self.content)
        return thinking, answer or ""

    @property
    def answer(self) -> str | None:
        """The boxed answer: the server's when it sent one, else extracted here by the server's rule (the
        last ``\\boxed{}`` of the text after the first ``</think>``, or of all of it if the thought never
        closed)."""
        if self.server_answer is not None:
            return self.server_answer
        if self.reasoning:  # split by the server's reasoning parser
            return boxed_answer(answer_part_parsed(self.reasoning, self.content))
        return boxed_answer(answer_part(self.content))

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


@dataclass
class Completion:
    """A streamed chat completion with n choices, updated in place chunk by chunk."""

    samples: list[Sample]
    server_majority: str | None = None
    server_vote: Majority | None = None  # the server's whole vote, from its majority_* fields

    @property
    def majority(self) -> Majority:
        """The server's vote when it sent one, else the same vote (luffy_math.vote) taken here."""
        if self.server_vote is not None:
            return self.server_vote
        return majority([s.answer for s in self.samples])

    @property
    def majority_answer(self) -> str | None:
        if self.server_majority is not None:
            return self.server_majority
        return self.majority.answer


@dataclass(frozen=True)
class GradeResult:
    correct: bool
    extracted: str | None
    decided_by: str


@dataclass
class GradeReport:
    grades: list[GradeResult]
    majority: Majority
    by_server: bool  # False when graded locally because the endpoint has no /v1/grade

    @property
    def majority_answer(self) -> str | None:
        return self.majority.answer


def server_majority(fields: dict) -> Majority | None:
    """The vote in a luffy-serve response's ``majority_*`` fields (None when it has none)."""
    if "majority_answer" not in fields:
        return None
    counts = fields.get("majority_counts")
    return Majority(fields["majority_answer"], fields.get("majority_reason"),
                    {str(a): int(c) for a, c in counts.items()} if isinstance(counts, dict) else {})


def api_root(base_url: str) -> str:
    """The server root, whether the user gave it with or without the trailing /v1."""
    root = base_url.strip().rstrip("/")
    return root.removesuffix("/v1")


class Endpoint:
    """An OpenAI-compatible endpoint; one per demo, shared by every browser session."""

    def __init__(self, base_url: str, api_key: str | None = None, model: str | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 600.0):
        self.root = api_root(base_url)
        self.model = model
        self.client = openai.AsyncOpenAI(
            base_url=f"{self.root}/v1", api_key=api_key or "EMPTY", max_retries=0,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout))

    def _error(self, exc: Exception) -> EndpointError:
        if isinstance(exc, openai.APITimeoutError):
            return EndpointError(f"The model endpoint at {self.root} timed out.")
        if isinstance(exc, openai.APIConnectionError):
            return EndpointError(
                f"Cannot reach the model endpoint at {self.root}. Is luffy-serve running there? "
                "Start it with `luffy-serve --model MODEL` or point the demo elsewhere with --base-url.")
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            detail = (body.get("message") or body.get("detail") or exc.response.text.strip()[:300]
                      or exc.response.reason_phrase)
            return EndpointError(f"The model endpoint at {self.root} answered {exc.status_code}: {detail}")
        return EndpointError(f"The model endpoint at {self.root} failed: {exc}")

    async def describe(self) -> tuple[str, int | None]:
        """(model, its context length when the server says: vLLM's max_model_len) from /v1/models.

        The model is the one configured, else the first one the endpoint serves.
        """
        try:
            page = await self.client.models.list()
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not page.data:
            raise EndpointError(f"The model endpoint at {self.root} serves no model.")
        card = next((m for m in page.data if m.id == self.model), page.data[0])
        self.model = self.model or card.id
        return self.model, (card.model_extra or {}).get("max_model_len")

    async def resolve_model(self) -> str:
        if self.model is None:
            await self.describe()
        return self.model

    async def stream_chat(self, question: str, temperature: float, max_tokens: int,
                          n: int = 1, seed: int | None = None) -> AsyncIterator[Completion]:
        """Stream one question (single turn, no system prompt, as LUFFY's evaluation asks it).

        ``seed`` makes sampled answers reproducible (vLLM seeds each of the ``n`` choices from it). Yields the same Completion object after every chunk. Closing the generator (the Stop button)
        closes the HTTP stream, which makes the server abort the request.
        """
        model = await self.resolve_model()
        completion = Completion(samples=[Sample() for _ in range(n)])
        try:
            stream = await self.client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": question}], stream=True,
                temperature=temperature, max_tokens=max_tokens, n=n, seed=seed)
            async with stream:
                async for chunk in stream:
                    extra = chunk.model_extra or {}
                    if extra.get("majority_answer") is not None:
                        completion.server_majority = extra["majority_answer"]
                    if "majority_answer" in extra:
                        completion.server_vote = server_majority(extra)
                    for choice in chunk.choices:
                        sample = completion.samples[choice.index]
                        if choice.delta is not None:
                            delta_extra = choice.delta.model_extra or {}
                            sample.reasoning += (delta_extra.get("reasoning_content")
                                                 or delta_extra.get("reasoning") or "")
                            sample.content += choice.delta.content or ""
                        choice_extra = choice.model_extra or {}
                        if choice_extra.get("answer") is not None:
                            sample.server_answer = choice_extra["answer"]
                        if choice.finish_reason is not None:
                            sample.finish_reason = choice.finish_reason
                    yield completion
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc

    async def grade(self, responses: list[str], gold: str) -> GradeReport:
        """Grade responses against the gold through the server's /v1/grade (luffy mode).

        An endpoint without that route (a plain vLLM server) is graded here with luffy_math instead.
        """
        body = {"responses": responses, "gold": gold, "mode": "luffy"}
        try:
            reply = await self.client.post("/grade", body=body, cast_to=httpx.Response)
        except openai.NotFoundError:
            grades = await asyncio.to_thread(lambda: [grade(r, gold) for r in responses])
            return GradeReport(
                grades=[GradeResult(g.correct, g.extracted, g.decided_by) for g in grades],
                majority=majority([g.extracted for g in grades]), by_server=False)
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        data = reply.json()
        return GradeReport(
            grades=[GradeResult(bool(g["correct"]), g.get("extracted"), str(g.get("decided_by", "")))
                    for g in data["grades"]],
            majority=server_majority(data) or majority([g.get("extracted") for g in data["grades"]]),
            by_server=True)

    async def close(self) -> None:
        await self.client.close()
