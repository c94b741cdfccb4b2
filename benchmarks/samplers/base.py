"""The sampler interface: render prompts, then generate every request, reporting each as it finishes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.6
    top_p: float = 1.0
    max_tokens: int = 8192
    template: str = "own"


@dataclass(frozen=True)
class SampleRequest:
    key: tuple[str, str, int]  # (benchmark, problem id, sample index)
    question: str  # the user message
    seed: int  # per-sample seed: a resumed run draws the same samples as an uninterrupted one


@dataclass
class Completion:
    key: tuple[str, str, int]
    response: str  # everything the model generated, reasoning included
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    rendered_prompt: str | None  # None when an endpoint rendered the chat template itself
    endpoint: str | None = None  # the server that answered (openai backend)


class Sampler(Protocol):
    """Generates all requests at once; calls on_done(completion) as each one finishes (from any thread)."""

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None: ...

    def describe(self) -> dict[str, str]: ...
