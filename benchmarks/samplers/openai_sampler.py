"""The endpoint backend: one or several OpenAI-compatible servers (luffy-serve, vLLM, SGLang) via the official
client.

Bounded concurrency per endpoint; each request goes to the live endpoint with the fewest in flight. The
client retries a failed request on its own endpoint first (connection errors, timeouts, 429 and 5xx, with
backoff); an endpoint that still fails is taken out for a while (longer after each failure in a row), the
request goes to another one, and the endpoint is tried again when its time is up. With one endpoint, a
request that fails after its retries ends the run with a one-line error. Every request is answered once: it
is sent again only after its earlier attempt failed. The "own" template is the server's chat template (chat
completions on the user message alone); the fixed templates are rendered here and sent as plain completions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.problems import HarnessError
from benchmarks.samplers.base import Completion, SampleRequest, Sampling
from benchmarks.samplers.dispatch import Dispatcher, Target, target_of
from benchmarks.templates import render_fixed
from luffy_math.thinking import join_response
from luffy_util.errors import first_line


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
        self.endpoints = [Target(normalized(url)) for url in dict.fromkeys(urls)]
        self.base_url = self.endpoints[0].name
        self.api_key = api_key
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries

    def describe(self) -> dict[str, str]:
        return {"backend": "openai", "model": self.model, "base_url": ", ".join(e.name for e in self.endpoints)}

    def served(self) -> dict[str, int]:
        """Samples each endpoint answered in the last generate()."""
        return {e.name: e.served for e in self.endpoints}

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None:
        import openai

        try:
            asyncio.run(self._generate_all(requests, sampling, on_done))
        except openai.APIStatusError as e:
            raise HarnessError(f"{target_of(e, self.base_url)} answered {e.status_code}: {_message(e)}") from e
        except openai.APIConnectionError as e:
            where = target_of(e, self.base_url) if len(self.endpoints) == 1 else ", ".join(
                e.name for e in self.endpoints)
            raise HarnessError(f"cannot reach {where} ({e.__class__.__name__}) after {self.max_retries} "
                               "retries") from e

    async def _generate_all(self, requests: list[SampleRequest], sampling: Sampling,
                            on_done: Callable[[Completion], None]) -> None:
        import openai

        asyncio.get_running_loop().set_exception_handler(_quiet_on_interrupt)
        # With several endpoints a request retries once on its own, then moves on, instead of waiting out the
        # client's whole backoff on a server that is gone; it gives up after as many failures as one
        # endpoint's retries allow on each.
        several = len(self.endpoints) > 1
        own_retries = min(self.max_retries, 1) if several else self.max_retries
        for endpoint in self.endpoints:
            endpoint.handle = openai.AsyncOpenAI(base_url=endpoint.name, api_key=self.api_key, timeout=self.timeout,
                                                 max_retries=own_retries)

        def endpoint_failed(error: BaseException) -> bool:
            return isinstance(error, (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError))

        dispatcher = Dispatcher(self.endpoints, self.concurrency,
                                give_up_after=len(self.endpoints) * (self.max_retries + 1) + 1 if several else 1,
                                attempt=lambda endpoint, request: self._sample(endpoint.handle, request, sampling),
                                target_failed=endpoint_failed)
        try:
            await dispatcher.run(requests, on_done)
        finally:
            for endpoint in self.endpoints:
                await endpoint.handle.close()

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
            # A server that splits off the thinking (vLLM's parser, luffy-serve's text split) gives null content
            # when it never closed: the record keeps the text as the model wrote it, </think> only if it did.
            text = (content or "") if reasoning is None else join_response(reasoning, content)
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
    return first_line(str(message or error.message or ""), 200, fallback=type(error).__name__)


def _quiet_on_interrupt(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: Ctrl-C or SIGTERM (benchmarks.cli.Terminated) raised inside a task ends
    the run, and the CLI says so in one line; the task keeps the exception too, which asyncio would otherwise log
    ("Task exception was never retrieved" and a traceback) after that line, when the task is collected."""
    if isinstance(context.get("exception"), KeyboardInterrupt):
        return
    loop.default_exception_handler(context)
