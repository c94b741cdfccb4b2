"""Adaptive majority votes: a request's ``n`` samples run in waves and stop once the majority is settled.

A chat or completions request with ``n > 1`` and ``"vote": {"mode": "adaptive"}`` goes through vLLM's own
handler once, as any ``n``-sample request: vLLM renders and tokenizes the prompt, builds the sampling
parameters, and formats the response. Only the engine call differs: the handlers' engine client is wrapped
(:class:`VoteEngine`), and inside a vote request (:data:`ACTIVE`, a context variable the math layer sets) its
``generate`` submits the samples to the engine one by one, each with ``n = 1`` and, for a seeded request,
the seed ``seed + i``, exactly as vLLM's parallel sampling makes the i-th choice of an ``n``-sample request.
The samples' outputs come back to vLLM's handler as if from one ``n``-sample request, so a seeded adaptive
vote draws the very samples (text, reasoning split, logprobs) of the full vote.

Samples are counted in index order (0, 1, 2, ...), as Adaptive-Consistency draws them one after another:
after each sample finishes, the finished prefix is voted on (the equivalence-aware vote of the math layer)
and the stopping rule, Adaptive-Consistency's Beta criterion (Aggarwal et al., EMNLP 2023, arXiv
2305.11860; :func:`luffy_math.vote.settled`), asks whether the leader stays ahead of the runner-up with
probability ``confidence``. Once it does, every sample still running is aborted in the engine. Counting in
index order (not in order of finishing) keeps the vote an unbiased draw (short answers finish first) and
makes a seeded request reproducible.

Waves: by default the first wave is the fewest samples that can settle a vote (4 at 0.95: four agreeing
samples give P = 31/32), and whenever a counted sample leaves the vote open, enough are started that, with
those already running, the vote could settle if all of them joined the leader
(:func:`luffy_math.vote.more_to_settle`): no sample starts that even the best case would not need. With
``"wave": w`` the request keeps ``w`` samples running instead (more at once: less latency, more tokens
spent on samples aborted unfinished).

The response: the counted choices (indices 0..k-1; a stream also shows the others it started, each ending
with ``finish_reason: "abort"``), ``majority_answer``, ``majority_reason`` and ``majority_counts`` of the
grouping the stopping rule saw for them (a vote that used all ``n`` samples unsettled may end in a tie),
``"vote": {"mode": "adaptive", "samples": k, "stopped_early": k < n, "confidence": c}``; ``usage.completion_tokens`` counts every token
generated, aborted samples' included (:meth:`VoteRun.usage` corrects vLLM's count, which sees only the
outputs handed to it), and ``usage.completion_tokens_details.reasoning_tokens`` the thoughts' tokens of all
of them.

Outside adaptive votes the wrapped engine client only records, for the math layer, the token ids each choice
generated (:data:`luffy_serve.thought_tokens.RECORDING`), from which the thoughts' tokens are counted.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator
from copy import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams

from luffy_math import boxed_answer
from luffy_math.thinking import answer_part, answer_part_parsed, split_response
from luffy_math.vote import DEFAULT_CONFIDENCE, fewest_deciding, more_to_settle, settled

from .thought_tokens import RECORDING, recorded

if TYPE_CHECKING:
    from .math_extras import MathExtras

MODES = ("adaptive",)
# The vLLM handlers whose engine client is wrapped (attributes of vLLM's app.state).
HANDLERS = ("openai_serving_chat", "openai_serving_completion")


@dataclass(frozen=True)
class VoteSpec:
    """What a request's ``vote`` field asked for."""

    confidence: float
    wave: int | None  # samples kept running; None: as many as could settle the vote


def vote_problem(vote: object, n: object, body: dict[str, Any]) -> str | None:
    """Why a request's ``vote`` field cannot be served, or None."""
    if not isinstance(vote, dict):
        return "'vote' must be an object, e.g. {\"mode\": \"adaptive\"}"
    unknown = sorted(set(vote) - {"mode", "confidence", "wave"})
    if unknown:
        return f"'vote' has unknown field(s) {', '.join(unknown)} (known: mode, confidence, wave)"
    if vote.get("mode") not in MODES:
        return f"'vote.mode' must be one of {', '.join(MODES)}"
    confidence = vote.get("confidence", DEFAULT_CONFIDENCE)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        return "'vote.confidence' must be a number strictly between 0 and 1"
    wave = vote.get("wave")
    if wave is not None and (isinstance(wave, bool) or not isinstance(wave, int) or wave < 1):
        return "'vote.wave' must be a positive integer"
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        return "an adaptive vote needs 'n' of at least 2"
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) > 1 and not all(isinstance(t, int) for t in prompt):
        return "an adaptive vote takes one prompt"
    if body.get("use_beam_search"):
        return "an adaptive vote cannot use beam search"
    return None


def vote_spec(vote: dict[str, Any], n: int) -> VoteSpec:
    confidence = float(vote.get("confidence", DEFAULT_CONFIDENCE))
    wave = vote.get("wave")
    return VoteSpec(confidence, None if wave is None else min(n, wave))


# The vote of the request being handled, set by the math layer around vLLM's handler; None elsewhere.
ACTIVE: contextvars.ContextVar[VoteRun | None] = contextvars.ContextVar("luffy_adaptive_vote", default=None)


class VoteEngine:
    """vLLM's engine client as its chat and completions handlers see it: the same object in every respect,
    except that ``generate`` inside an adaptive-vote request (:data:`ACTIVE`) runs the vote, and inside a
    recording one (:data:`~luffy_serve.thought_tokens.RECORDING`) records the ids generated."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, prompt: Any, sampling_params: Any, request_id: str, **kwargs: Any):
        run = ACTIVE.get()
        if run is None or not isinstance(sampling_params, SamplingParams) or sampling_params.n < 2:
            outputs = self.inner.generate(prompt, sampling_params, request_id, **kwargs)
            recording = RECORDING.get()
            if recording is None or not isinstance(sampling_params, SamplingParams):
                return outputs
            return recorded(outputs, recording, sampling_params.output_kind == RequestOutputKind.DELTA)
        return run.outputs(self.inner, prompt, sampling_params, request_id, kwargs)


def install(app: Any) -> bool:
    """Wrap the engine client of vLLM's chat and completions handlers (once); False when ``app`` has none."""
    state = getattr(app, "state", None)
    handlers = [h for h in (getattr(state, name, None) for name in HANDLERS) if h is not None]
    for handler in handlers:
        if not isinstance(handler.engine_client, VoteEngine):
            handler.engine_client = VoteEngine(handler.engine_client)
    return bool(handlers)


def parses_reasoning(app: Any) -> bool:
    """Whether vLLM's chat handler runs a reasoning parser (then a chat answer is read from its split)."""
    chat = getattr(getattr(app, "state", None), "openai_serving_chat", None)
    parser_cls = getattr(chat, "parser_cls", None)
    return getattr(parser_cls, "reasoning_parser_cls", None) is not None


@dataclass
class _Sample:
    index: int
    request_id: str
    task: asyncio.Task | None = None
    tokens: int = 0  # generated so far, as the engine reported them
    token_ids: list[int] = field(default_factory=list)  # the ids generated so far
    text: str = ""
    last: RequestOutput | None = None
    output: CompletionOutput | None = None  # the finished output (cumulative)
    shown: bool = False  # part of it went to vLLM's stream
    finished: bool = False  # it ended on its own (stop, length)
    ended: bool = False  # its engine request is over
    answer: str | None = None
    pieces: list[str] = field(default_factory=list)


_END = object()


class VoteRun:
    """One adaptive vote: the samples it started, what they generated, and the vote over the counted ones."""

    def __init__(self, extras: MathExtras, spec: VoteSpec, n: int, is_chat: bool, parsed_reasoning: bool):
        self.extras, self.spec, self.n = extras, spec, n
        self.is_chat, self.parsed_reasoning = is_chat, parsed_reasoning
        self.samples: list[_Sample] = []
        self.counted = 0  # samples 0..counted-1 are finished and voted on
        self.decided = False
        self.groups: list[tuple[str, int]] = []
        self.grouping_timed_out: str | None = None  # "timed_out" when the last grouping fell back to exact text

    # --- what the response gains --------------------------------------------------------------------------

    def vote_field(self) -> dict[str, Any]:
        return {"mode": "adaptive", "samples": self.counted, "stopped_early": self.counted < self.n,
                "confidence": self.spec.confidence}

    def counted_groups(self) -> tuple[list[tuple[str, int]], str | None]:
        """The counted samples' answer groups and whether their grouping timed out (as MathExtras.vote_groups)."""
        return self.groups, self.grouping_timed_out

    def generated_ids(self) -> list[list[int]]:
        """The ids every sample generated, aborted ones included."""
        return [sample.token_ids for sample in self.samples]

    def usage(self, usage: dict[str, Any]) -> None:
        """Correct vLLM's usage (the outputs it was handed) to every token generated, aborted ones too."""
        completion = sum(s.tokens for s in self.samples)
        usage["completion_tokens"] = completion
        usage["total_tokens"] = (usage.get("prompt_tokens") or 0) + completion

    # --- the samples --------------------------------------------------------------------------------------

    async def outputs(self, engine: Any, prompt: Any, params: SamplingParams, request_id: str,
                      kwargs: dict[str, Any]) -> AsyncGenerator[RequestOutput, None]:
        """What vLLM's handler reads from the engine for an ``n``-sample request: the samples' outputs under
        their indices, streamed (DELTA: the counted ones and those shown before the decision, which then end
        with ``abort``) or once at the end (FINAL_ONLY: the counted ones)."""
        stream = params.output_kind != RequestOutputKind.FINAL_ONLY
        events: asyncio.Queue[tuple[_Sample, Any]] = asyncio.Queue()

        async def pump(sample: _Sample, sample_params: SamplingParams) -> None:
            try:
                async for out in engine.generate(prompt, sample_params, sample.request_id, **kwargs):
                    events.put_nowait((sample, out))
            except Exception as exc:  # noqa: BLE001 - handed to the handler, which answers as for any request
                events.put_nowait((sample, exc))
            finally:
                events.put_nowait((sample, _END))

        def launch() -> None:
            index = len(self.samples)
            if index >= self.n or self.decided:
                return
            sample = _Sample(index, f"{request_id}-sample{index}")
            sample_params = copy(params)  # as vLLM's parallel sampling makes its i-th child
            sample_params.n = 1
            if params.seed is not None:
                sample_params.seed = params.seed + index
            self.samples.append(sample)
            sample.task = asyncio.create_task(pump(sample, sample_params))

        try:
            for _ in range(self.spec.wave or fewest_deciding(self.spec.confidence)):
                launch()
            while any(not s.ended for s in self.samples):
                sample, item = await events.get()
                if item is _END:
                    sample.ended = True
                    continue
                if isinstance(item, BaseException):
                    raise item
                out = item.outputs[0]
                out.index = sample.index
                if stream:
                    sample.tokens += len(out.token_ids)
                    sample.token_ids.extend(out.token_ids)
                    sample.pieces.append(out.text)
                else:
                    sample.tokens = len(out.token_ids)
                    sample.token_ids = list(out.token_ids)
                if self.decided or sample.finished:
                    continue  # aborted after the decision: only its tokens count
                sample.last = item
                if stream:
                    sample.shown = True
                    yield item
                if out.finish_reason is None:
                    continue
                sample.finished = True
                sample.output = out
                text = "".join(sample.pieces) if stream else out.text
                sample.answer = boxed_answer(self._graded_text(text))
                await self._advance(launch)
                if self.decided:
                    await self._abort_running(engine)
                    if stream:
                        for closing in self._closings(params):
                            yield closing
            if not self.decided:  # every sample is over, yet the counted ones did not all finish
                raise RuntimeError("a sample of the vote ended without finishing")
            if not stream:
                first = self.samples[0].last
                assert first is not None
                final = copy(first)
                final.request_id = request_id
                final.outputs = [s.output for s in self.samples[: self.counted] if s.output is not None]
                final.finished = True
                yield final
        finally:
            running = [s.task for s in self.samples if s.task is not None and not s.task.done()]
            for task in running:  # a disconnect or an error: vLLM aborts each cancelled request
                task.cancel()
            if running:
                await asyncio.wait(running, timeout=10)

    def _graded_text(self, text: str) -> str:
        """The text the math layer grades of a sample's whole output, as it reads vLLM's response."""
        if self.is_chat and not self.extras.split_text:
            return answer_part_parsed(*split_response(text)) if self.parsed_reasoning else text
        return answer_part(text)

    async def _advance(self, launch) -> None:
        """Vote on each newly finished prefix; stop at the first one the rule settles, else start more."""
        while not self.decided and self.counted < len(self.samples) and self.samples[self.counted].finished:
            self.counted += 1
            answers = [s.answer for s in self.samples[: self.counted]]
            self.groups, self.grouping_timed_out = await self.extras.vote_groups(answers)
            if self.counted == self.n or settled([count for _, count in self.groups], self.spec.confidence):
                self.decided = True
        if self.decided:
            return
        if self.spec.wave is not None:
            while sum(not s.finished for s in self.samples) < self.spec.wave and len(self.samples) < self.n:
                launch()
            return
        ahead = len(self.samples) - self.counted  # started, not counted yet: in the best case all join the leader
        for _ in range(more_to_settle([count for _, count in self.groups], self.spec.confidence) - ahead):
            launch()

    async def _abort_running(self, engine: Any) -> None:
        """Abort the samples still running; each ends with vLLM's abort output, which carries its last tokens."""
        running = [s.request_id for s in self.samples if not s.ended and not s.finished]
        if running:
            await engine.abort(running)

    def _closings(self, params: SamplingParams) -> list[RequestOutput]:
        """For a stream: each sample shown in part but not counted ends with ``finish_reason: "abort"``."""
        closings = []
        for sample in self.samples:
            if sample.shown and not sample.finished and sample.last is not None:
                closing = copy(sample.last)
                closing.outputs = [CompletionOutput(index=sample.index, text="", token_ids=[],
                                                    cumulative_logprob=None,
                                                    logprobs=[] if params.logprobs is not None else None,
                                                    finish_reason="abort")]
                closings.append(closing)
        return closings
