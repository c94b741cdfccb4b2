"""The endpoint backend: one or several OpenAI-compatible servers (luffy-serve, vLLM, SGLang) via the official
client.

Bounded concurrency per endpoint; each request goes to the live endpoint with the fewest in flight. The
client retries a failed request on its own endpoint first (connection errors, timeouts, 429 and 5xx, with
backoff); an endpoint that still fails is taken out for a while (longer after each failure in a row), the
request goes to another one, and the endpoint is tried again when its time is up. A run with one endpoint
behaves as before: its retries, then a one-line error. Every request is answered once: it is sent again only
after its earlier attempt failed. The "own" template is the server's chat template (chat completions on
the user message alone); the fixed templates are rendered here and sent as plain completions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.problems import HarnessError
from benchmarks.samplers.base import Completion, SampleRequest, Sampling
from benchmarks.templates import render_fixed

# An endpoint that failed is left out this long, doubled after each further failure in a row, up to the cap.
REST_SECONDS = 5.0
MAX_REST_SECONDS = 120.0


@dataclass
class Endpoint:
    """One server: its client, what it has in flight, and until when it is left out after failing."""

    url: str
    client: Any = None
    in_flight: int = 0
    served: int = 0
    failures_in_a_row: int = 0
    resting_until: float = 0.0

    def live(self, now: float) -> bool:
        return now >= self.resting_until

    def failed(self, now: float) -> None:
        self.failures_in_a_row += 1
        self.resting_until = now + min(REST_SECONDS * 2 ** (self.failures_in_a_row - 1), MAX_REST_SECONDS)


def normalized(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class OpenAISampler:
    def __init__(self, base_url: str | Sequence[str], api_key: str, model: str, concurrency: int = 32,
                 timeout: float = 3600, max_retries: int = 5):
        """``base_url``: one endpoint or several; ``concurrency``: requests in flight per endpoint."""
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise HarnessError("the openai backend needs at least one --base-url")
        self.endpoints = [Endpoint(normalized(url)) for url in dict.fromkeys(urls)]
        self.base_url = self.endpoints[0].url
        self.api_key = api_key
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries

    def describe(self) -> dict[str, str]:
        return {"backend": "openai", "model": self.model, "base_url": ", ".join(e.url for e in self.endpoints)}

    def served(self) -> dict[str, int]:
        """Samples each endpoint answered in the last generate()."""
        return {e.url: e.served for e in self.endpoints}

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None:
        import openai

        try:
            asyncio.run(self._generate_all(requests, sampling, on_done))
        except openai.APIStatusError as e:
            raise HarnessError(f"{_url_of(e, self.base_url)} answered {e.status_code}: {_message(e)}") from e
        except openai.APIConnectionError as e:
            where = _url_of(e, self.base_url) if len(self.endpoints) == 1 else ", ".join(
                e.url for e in self.endpoints)
            raise HarnessError(f"cannot reach {where} ({e.__class__.__name__}) after {self.max_retries} "
                               "retries") from e

    async def _generate_all(self, requests: list[SampleRequest], sampling: Sampling,
                            on_done: Callable[[Completion], None]) -> None:
        from openai import AsyncOpenAI

        changed = asyncio.Condition()  # an endpoint freed a slot, or may be tried again
        # With several endpoints a request retries once on its own, then moves on, instead of waiting out the
        # client's whole backoff on a server that is gone.
        own_retries = self.max_retries if len(self.endpoints) == 1 else min(self.max_retries, 1)
        for endpoint in self.endpoints:
            endpoint.client = AsyncOpenAI(base_url=endpoint.url, api_key=self.api_key, timeout=self.timeout,
                                          max_retries=own_retries)
            endpoint.in_flight = endpoint.served = endpoint.failures_in_a_row = 0
            endpoint.resting_until = 0.0

        async def take() -> Endpoint:
            async with changed:
                while True:
                    now = time.monotonic()
                    free = [e for e in self.endpoints if e.live(now) and e.in_flight < self.concurrency]
                    if free:
                        chosen = min(free, key=lambda e: (e.in_flight, e.failures_in_a_row))
                        chosen.in_flight += 1
                        return chosen
                    resting = [e.resting_until for e in self.endpoints if not e.live(now)]
                    wait = max(min(resting) - now, 0.01) if resting else None
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(changed.wait(), wait)

        async def give_back(endpoint: Endpoint, failed: bool) -> None:
            async with changed:
                endpoint.in_flight -= 1
                if failed:
                    endpoint.failed(time.monotonic())
                else:
                    endpoint.failures_in_a_row = 0
                    endpoint.served += 1
                changed.notify_all()

        async def one(request: SampleRequest) -> None:
            import openai

            failures = 0
            while True:
                endpoint = await take()
                try:
                    completion = await self._sample(endpoint.client, request, sampling)
                except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as e:
                    await give_back(endpoint, failed=True)
                    failures += 1
                    # its own endpoint retried already: go to another, and give up after as many failures as
                    # one endpoint's retries allow on each
                    if len(self.endpoints) == 1 or failures > len(self.endpoints) * (self.max_retries + 1):
                        e.luffy_endpoint = endpoint.url  # type: ignore[attr-defined]
                        raise
                    continue
                except Exception as e:
                    await give_back(endpoint, failed=False)
                    e.luffy_endpoint = endpoint.url  # type: ignore[attr-defined]
                    raise
                except BaseException:  # cancelled
                    await give_back(endpoint, failed=False)
                    raise
                await give_back(endpoint, failed=False)
                completion.endpoint = endpoint.url
                on_done(completion)
                return

        try:
            tasks = [asyncio.create_task(one(request)) for request in requests]
            try:
                await asyncio.gather(*tasks)
            finally:  # on a failure, cancel the rest: their connections close and the servers abort them
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for endpoint in self.endpoints:
                await endpoint.client.close()

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


def _url_of(error: BaseException, default: str) -> str:
    return getattr(error, "luffy_endpoint", default)


def _message(error: Any) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(message or error.message).splitlines()[0][:200]
