"""The endpoint backend: any OpenAI-compatible server (luffy-serve, vLLM, SGLang) via the official client.

Bounded concurrency; the client retries connection errors, timeouts, 429 and 5xx with backoff.
The "own" template is the server's chat template (chat completions on the user message alone);
the fixed templates are rendered here and sent as plain completions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from benchmarks.problems import HarnessError
from benchmarks.samplers.base import Completion, SampleRequest, Sampling
from benchmarks.templates import render_fixed


class OpenAISampler:
    def __init__(self, base_url: str, api_key: str, model: str, concurrency: int = 32, timeout: float = 3600,
                 max_retries: int = 5):
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.api_key = api_key
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries

    def describe(self) -> dict[str, str]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None:
        import openai

        try:
            asyncio.run(self._generate_all(requests, sampling, on_done))
        except openai.APIStatusError as e:
            raise HarnessError(f"{self.base_url} answered {e.status_code}: {_message(e)}") from e
        except openai.APIConnectionError as e:
            raise HarnessError(f"cannot reach {self.base_url} ({e.__class__.__name__}) after "
                               f"{self.max_retries} retries") from e

    async def _generate_all(self, requests: list[SampleRequest], sampling: Sampling,
                            on_done: Callable[[Completion], None]) -> None:
        from openai import AsyncOpenAI

        gate = asyncio.Semaphore(self.concurrency)
        async with AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                               max_retries=self.max_retries) as client:

            async def one(request: SampleRequest) -> None:
                async with gate:
                    completion = await self._sample(client, request, sampling)
                on_done(completion)

            tasks = [asyncio.create_task(one(request)) for request in requests]
            try:
                await asyncio.gather(*tasks)
            finally:  # on a failure, cancel the rest: their connections close and the server aborts them
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _sample(self, client: Any, request: SampleRequest, sampling: Sampling) -> Completion:
        common = {"model": self.model, "temperature": sampling.temperature, "top_p": sampling.top_p,
                  "max_tokens": sampling.max_tokens, "seed": request.seed, "n": 1}
        if sampling.template == "own":
            reply = await client.chat.completions.create(
                messages=[{"role": "user", "content": request.question}], **common)
            choice = reply.choices[0]
            extra = choice.message.model_extra or {}
            reasoning = extra.get("reasoning_content") or extra.get("reasoning")
            content = choice.message.content
            # Servers that split off the thinking (vLLM's parser, luffy-serve's text split) give null content
            # when it never closed; join the parts back as the model wrote them, </think> only if it did.
            if reasoning is None:
                text = content or ""
            else:
                text = reasoning if content is None else f"{reasoning}</think>{content}"
            rendered = None
        else:
            rendered = render_fixed(sampling.template, request.question)
            reply = await client.completions.create(prompt=rendered, **common)
            choice = reply.choices[0]
            text = choice.text
        usage = reply.usage
        return Completion(request.key, text, choice.finish_reason, usage.prompt_tokens if usage else None,
                          usage.completion_tokens if usage else None, rendered)


def _message(error: Any) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(message or error.message).splitlines()[0][:200]
