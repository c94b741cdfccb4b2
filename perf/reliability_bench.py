"""luffy-serve under a hostile mixed load: what breaks, what leaks, what stalls. A report, never a test.

Starts ``luffy-serve --api-key KEY --demo`` on the tiny checkpoint (or probes a running server with
``--url URL --api-key KEY``) and, for ``--duration`` seconds on loopback, runs all at once:

- chat streams through the official ``openai`` client (n = 1, 2 or 4, most with a ``gold``), a third of them
  dropped by the client after a few chunks;
- a flood of ``/v1/grade`` batches of adversarial answers, both modes (the answers that really take seconds
  in luffy_math's graders, measured on a 2-core CPU: in "math_verify" mode each runs into the 10 s item
  bound; in "luffy" mode each costs about 1-1.7 s, its Math-Verify step's CPU budget);
- malformed requests (bodies that are not JSON, wrong types, bad parameters, unknown routes, wrong methods,
  oversized bodies);
- every route the server exposes (its /openapi.json, vLLM's known routes, Gradio's under /demo) without a
  key and with a wrong one.

It prints, and writes to ``--out``: requests sent per kind, statuses, 5xx, error bodies that are not OpenAI
error JSON, 429s of the flood (a valid answer, counted apart), engine requests still running or waiting
afterwards (``/metrics``), the math-layer delay (streams with ``n > 1`` and a gold: time from the last
chunk that carries token text and no ``finish_reason`` to the end of the stream; it overstates the delay by
at most one inter-token interval), the slowest ``/v1/grade`` request (as the client saw it, and the server's own
time from its ``Server-Timing`` header), this script's own event-loop lag, the routes that answered a
non-401 without a valid key (``/health`` is meant to be open) and, for a server it started, the peak memory of
the server's processes. Exit code 0 unless the script itself fails.

    python perf/reliability_bench.py [--model DIR] [--duration 60] [--out FILE] [-- luffy-serve flags]
    python perf/reliability_bench.py --url http://127.0.0.1:8000 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from serve_bench import REPO, start, tiny_checkpoint

from luffy_util.processes import free_port, stop

KEY = "reliability-key"
GOLD = "42"  # what the tiny checkpoint answers
OPEN_BY_DESIGN = {"/health"}
# Measured with luffy_math.grade(..., timeout=10) on a 2-core CPU (seconds, "luffy" / "math_verify"):
ADVERSARIAL = {
    "luffy": [r"2^{2^{2^{2^{100}}}}",  # 1.5 / 10 (timeout)
              r"10^{10^{10}}",  # 1.7 / 10 (timeout)
              r"((20!)!)!",  # 1.7 / 10 (timeout)
              r"(x+1)^{10000}",  # 1.3 / 10 (timeout)
              "+".join(f"\\frac{{{i}}}{{{i + 1}}}" for i in range(300)),  # 1.4 / 0.9
              r"2^{100000} \cdot 3^{100000}"],  # 1.1 / 0.5
    "math_verify": [r"2^{2^{2^{2^{100}}}}", r"2^{2^{2^{100}}}", r"9^{9^{9^{9}}}", r"10^{10^{10}}", r"((20!)!)!",
                    r"(x+1)^{10000}", r"e^{e^{e^{e^{e^{100}}}}}",
                    r"\frac{1}{1+" * 200 + "1" + "}" * 200],  # all 10 (timeout) but the last: 2.6
}
# (n, gold) of the streams: mostly the math layer's hardest case, n > 1 with a gold.
STREAM_SHAPES = [(2, GOLD), (4, GOLD), (4, GOLD), (1, GOLD), (1, None), (4, None)]
GRADIO_API = "/demo/gradio_api"
PROBE_SECONDS = 10.0  # per key probe
DEADLINE_GRACE = 1.0  # seconds past the /v1/grade deadline still counted as within it (sending the answer)


def is_openai_error(body: bytes) -> bool:
    """``{"error": {"message": str, "type": str, "code": ...}}``, the shape the openai client reads."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    error = data.get("error") if isinstance(data, dict) else None
    return (isinstance(error, dict) and isinstance(error.get("message"), str)
            and isinstance(error.get("type"), str) and "code" in error)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


@dataclass
class Tally:
    """Everything the load saw; every request goes through :meth:`answered` or :meth:`failed`."""

    sent: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    client_errors: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    server_errors: list[dict] = field(default_factory=list)  # 5xx
    bad_bodies: list[dict] = field(default_factory=list)  # errors that are not OpenAI error JSON
    math_delays: list[float] = field(default_factory=list)
    majority_missing: int = 0  # finished n > 1 streams without majority_answer (or with a null one)
    grade_latencies: list[tuple[float, str]] = field(default_factory=list)
    grade_server_s: list[float] = field(default_factory=list)  # the server's own time (its Server-Timing)
    client_lag: list[float] = field(default_factory=list)  # how late this script's event loop woke
    grade_unfinished: list[float] = field(default_factory=list)  # elapsed when the run stopped waiting
    grade_items_timed_out: int = 0
    key_probes: list[dict] = field(default_factory=list)
    by_case: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # malformed requests

    def answered(self, kind: str, case: str, status: int, body: bytes) -> None:
        self.sent[kind] += 1
        self.statuses[kind][status] += 1
        if kind == "malformed":
            self.by_case[case][status] += 1
        sample = {"kind": kind, "case": case, "status": status, "body": body[:300].decode("utf-8", "replace")}
        if status >= 500:
            self.server_errors.append(sample)
        if status >= 400 and not is_openai_error(body):
            self.bad_bodies.append(sample)

    def failed(self, kind: str, exc: BaseException) -> None:
        self.sent[kind] += 1
        self.client_errors[kind][type(exc).__name__] += 1


class Load:
    """One run of the mixed load against ``base_url``; workers loop until the time or the count is up."""

    def __init__(self, base_url: str, api_key: str, model: str, args: argparse.Namespace):
        self.base_url, self.api_key, self.model, self.args = base_url, api_key, model, args
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.tally = Tally()
        self.rng = random.Random(args.seed)
        self.stop_at = 0.0
        self.streams_started = 0
        self.http = httpx.AsyncClient(base_url=base_url, timeout=args.request_timeout,
                                      limits=httpx.Limits(max_connections=200))

    def running(self) -> bool:
        return time.monotonic() < self.stop_at and (self.args.count is None
                                                    or self.streams_started < self.args.count)

    async def run(self) -> Tally:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key, max_retries=0,
                             timeout=self.args.request_timeout)
        self.stop_at = time.monotonic() + self.args.duration
        workers = [asyncio.create_task(self.key_probes())]
        workers += [asyncio.create_task(self.stream_worker(client)) for _ in range(self.args.streams)]
        workers += [asyncio.create_task(self.grade_worker()) for _ in range(self.args.grade_clients)]
        workers.append(asyncio.create_task(self.malformed_worker()))
        lag = asyncio.create_task(self.watch_own_loop())
        _, pending = await asyncio.wait(workers, timeout=self.args.duration + self.args.drain)
        for task in pending:  # requests still out after the drain: given up on (and counted)
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        lag.cancel()
        await client.close()
        return self.tally

    async def watch_own_loop(self, tick: float = 0.05) -> None:
        """This script's own event-loop lag: a client-side latency includes it (the load runs in one process
        on the same CPUs as the server), so the report gives it beside the server's own time."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(tick)
            self.tally.client_lag.append(time.perf_counter() - started - tick)

    async def close(self) -> None:
        await self.http.aclose()

    # ---- chat streams, some dropped mid-stream ----------------------------------------------------------

    async def stream_worker(self, client) -> None:
        while self.running():
            self.streams_started += 1
            n, gold = self.rng.choice(STREAM_SHAPES)
            drop_after = self.rng.randint(0, 6) if self.rng.random() < self.args.disconnect_share else None
            question = f"What is {self.rng.randint(1, 999)} + {self.rng.randint(1, 999)}?"
            await self.one_stream(client, question, n, gold, drop_after)

    async def one_stream(self, client, question: str, n: int, gold: str | None, drop_after: int | None) -> None:
        import openai

        kind = "stream_dropped" if drop_after is not None else "stream"
        try:
            stream = await client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": question}], n=n, stream=True,
                max_tokens=self.args.max_tokens, temperature=1.0, extra_body={"gold": gold} if gold else None)
            last_token_at, majority, chunks = None, None, 0
            async for chunk in stream:
                chunks += 1
                if drop_after is not None and chunks > drop_after:
                    await stream.close()  # the client goes away; the server must abort the engine request
                    break
                now = time.perf_counter()
                extra = chunk.model_extra or {}
                majority = extra.get("majority_answer", majority)
                for choice in chunk.choices:
                    delta = choice.delta.model_extra or {}
                    has_text = choice.delta.content or delta.get("reasoning") or delta.get("reasoning_content")
                    if has_text and choice.finish_reason is None:
                        last_token_at = now
            end = time.perf_counter()
            self.tally.answered(kind, f"n={n} gold={gold is not None}", 200, b"")
            if drop_after is None and n > 1 and gold is not None and last_token_at is not None:
                self.tally.math_delays.append(end - last_token_at)
                self.tally.majority_missing += majority is None
        except openai.APIStatusError as exc:
            self.tally.answered(kind, f"n={n}", exc.status_code, exc.response.content)
        except (openai.APIError, httpx.HTTPError) as exc:
            self.tally.failed(kind, exc)

    # ---- the /v1/grade flood ---------------------------------------------------------------------------

    async def grade_worker(self) -> None:
        while self.running():
            mode = self.rng.choice(list(ADVERSARIAL))
            answers = self.rng.sample(ADVERSARIAL[mode], min(self.args.grade_batch, len(ADVERSARIAL[mode])))
            started = time.perf_counter()
            try:
                response = await self.http.post("/v1/grade", headers=self.auth,
                                                json={"answers": answers, "gold": "2", "mode": mode})
            except asyncio.CancelledError:
                self.tally.grade_unfinished.append(time.perf_counter() - started)
                raise
            except httpx.HTTPError as exc:
                self.tally.failed("grade_flood", exc)
                continue
            latency = time.perf_counter() - started
            self.tally.answered("grade_flood", mode, response.status_code, response.content)
            if response.status_code == 429:
                await asyncio.sleep(min(float(response.headers.get("retry-after") or 1), 2.0))
                continue
            self.tally.grade_latencies.append((latency, f"{mode} x{len(answers)}"))
            if (server_s := server_timing(response.headers.get("server-timing"))) is not None:
                self.tally.grade_server_s.append(server_s)
            if response.status_code == 200:
                grades = response.json().get("grades") or []
                self.tally.grade_items_timed_out += sum(bool(g.get("timed_out")) for g in grades)

    # ---- malformed requests ----------------------------------------------------------------------------

    def malformed_cases(self) -> list[tuple[str, str, str, dict[str, Any], bool]]:
        """(name, method, path, httpx arguments, once): ``once`` cases (oversized bodies) run a single time."""
        chat = {"model": self.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        big = "x" * (self.args.oversized_mb << 20)
        as_json = {"Content-Type": "application/json"}
        return [
            ("chat: not JSON", "POST", "/v1/chat/completions", {"content": b"{not json", "headers": as_json}, False),
            ("chat: plain text", "POST", "/v1/chat/completions",
             {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, False),
            ("chat: empty body", "POST", "/v1/chat/completions", {"headers": as_json}, False),
            ("chat: JSON array", "POST", "/v1/chat/completions", {"json": [1, 2]}, False),
            ("chat: invalid UTF-8", "POST", "/v1/chat/completions",
             {"content": b'{"model": "\xff\xfe"}', "headers": as_json}, False),
            ("chat: nesting 100k deep", "POST", "/v1/chat/completions",
             {"content": b"[" * 100_000 + b"]" * 100_000, "headers": as_json}, False),
            ("chat: form body", "POST", "/v1/chat/completions",
             {"content": b"a=b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, False),
            ("chat: messages a string", "POST", "/v1/chat/completions", {"json": {**chat, "messages": "hi"}}, False),
            ("chat: messages empty", "POST", "/v1/chat/completions", {"json": {**chat, "messages": []}}, False),
            ("chat: n a string", "POST", "/v1/chat/completions", {"json": {**chat, "n": "two"}}, False),
            ("chat: n=0", "POST", "/v1/chat/completions", {"json": {**chat, "n": 0}}, False),
            ("chat: n=10^6", "POST", "/v1/chat/completions", {"json": {**chat, "n": 10**6}}, False),
            ("chat: max_tokens=-1", "POST", "/v1/chat/completions", {"json": {**chat, "max_tokens": -1}}, False),
            ("chat: max_tokens=10^9", "POST", "/v1/chat/completions",
             {"json": {**chat, "max_tokens": 10**9}}, False),
            ("chat: temperature a string", "POST", "/v1/chat/completions",
             {"json": {**chat, "temperature": "hot"}}, False),
            ("chat: top_p=5", "POST", "/v1/chat/completions", {"json": {**chat, "top_p": 5}}, False),
            ("chat: top_logprobs=1000", "POST", "/v1/chat/completions",
             {"json": {**chat, "logprobs": True, "top_logprobs": 1000}}, False),
            ("chat: unknown model", "POST", "/v1/chat/completions", {"json": {**chat, "model": "nope"}}, False),
            ("chat: stream a string", "POST", "/v1/chat/completions", {"json": {**chat, "stream": "yes"}}, False),
            ("chat: gold a number", "POST", "/v1/chat/completions", {"json": {**chat, "gold": 5}}, False),
            ("chat: gold empty list", "POST", "/v1/chat/completions", {"json": {**chat, "gold": []}}, False),
            ("chat: grade_mode unknown", "POST", "/v1/chat/completions",
             {"json": {**chat, "gold": "1", "grade_mode": "x"}}, False),
            ("chat: oversized body", "POST", "/v1/chat/completions",
             {"json": {**chat, "messages": [{"role": "user", "content": big}]}}, True),
            ("completions: not JSON", "POST", "/v1/completions", {"content": b"}", "headers": as_json}, False),
            ("completions: prompt an object", "POST", "/v1/completions",
             {"json": {"model": self.model, "prompt": {"a": 1}}}, False),
            ("completions: oversized body", "POST", "/v1/completions",
             {"json": {"model": self.model, "prompt": big, "max_tokens": 1}}, True),
            ("grade: not JSON", "POST", "/v1/grade", {"content": b"[", "headers": as_json}, False),
            ("grade: no gold", "POST", "/v1/grade", {"json": {"answers": ["1"]}}, False),
            ("grade: answers and responses", "POST", "/v1/grade",
             {"json": {"answers": ["1"], "responses": ["1"], "gold": "1"}}, False),
            ("grade: answers a string", "POST", "/v1/grade", {"json": {"answers": "1", "gold": "1"}}, False),
            ("grade: mode unknown", "POST", "/v1/grade", {"json": {"answers": ["1"], "gold": "1", "mode": "x"}}, False),
            ("grade: 5000 items", "POST", "/v1/grade", {"json": {"answers": ["1"] * 5000, "gold": "1"}}, False),
            ("grade: answer too long", "POST", "/v1/grade", {"json": {"answers": ["1" * 200_001], "gold": "1"}}, False),
            ("grade: oversized body", "POST", "/v1/grade", {"json": {"answers": [big], "gold": "1"}}, True),
            ("tokenize: prompt a number", "POST", "/tokenize", {"json": {"model": self.model, "prompt": 5}}, False),
            ("detokenize: tokens strings", "POST", "/detokenize",
             {"json": {"model": self.model, "tokens": ["a"]}}, False),
            ("unknown route GET /v1/nope", "GET", "/v1/nope", {}, False),
            ("unknown route POST /nope", "POST", "/nope", {"json": {}}, False),
            ("unknown route GET /v1/chat/completions/x", "GET", "/v1/chat/completions/x", {}, False),
            ("bad escape in path", "GET", "/v1/models/%ZZ", {}, False),
            ("wrong method GET /v1/chat/completions", "GET", "/v1/chat/completions", {}, False),
            ("wrong method GET /v1/grade", "GET", "/v1/grade", {}, False),
            ("wrong method PUT /v1/grade", "PUT", "/v1/grade", {"json": {}}, False),
            ("wrong method DELETE /v1/models", "DELETE", "/v1/models", {}, False),
        ]

    async def malformed_worker(self) -> None:
        cases = self.malformed_cases()
        first_pass = True
        while self.running():
            for name, method, path, kwargs, once in cases:
                if not self.running():
                    return
                if once and not first_pass:
                    continue
                headers = {**self.auth, **kwargs.get("headers", {})}
                try:
                    response = await self.http.request(method, path, **{**kwargs, "headers": headers})
                    self.tally.answered("malformed", name, response.status_code, response.content)
                except httpx.HTTPError as exc:
                    self.tally.failed("malformed", exc)
                await asyncio.sleep(0.05)
            first_pass = False

    # ---- missing and wrong keys on every route --------------------------------------------------------

    async def routes(self) -> list[tuple[str, str]]:
        """(method, path): the server's /openapi.json (if it serves it), vLLM's known routes, Gradio's."""
        routes = [("POST", "/invocations"), ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/version"),
                  ("GET", "/load"), ("GET", "/ping"), ("GET", "/health"), ("GET", "/metrics"), ("GET", "/docs"),
                  ("GET", "/redoc"), ("GET", "/openapi.json"), ("GET", "/v1/models"),
                  ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/grade"),
                  ("POST", "/v1/responses"), ("POST", "/v1/embeddings"), ("POST", "/pooling"),
                  ("POST", "/classify"), ("POST", "/score"), ("POST", "/rerank"), ("GET", "/demo"),
                  ("GET", "/demo/"), ("GET", "/demo/config"), ("GET", "/demo/theme.css"),
                  ("GET", "/demo/monitoring"), ("GET", f"{GRADIO_API}/info"), ("GET", f"{GRADIO_API}/openapi.json"),
                  ("POST", f"{GRADIO_API}/queue/join"), ("GET", f"{GRADIO_API}/queue/data?session_hash=probe"),
                  ("POST", f"{GRADIO_API}/upload"), ("GET", f"{GRADIO_API}/startup-events"),
                  ("GET", f"{GRADIO_API}/heartbeat/probe"), ("GET", f"{GRADIO_API}/file=README.md"),
                  ("GET", f"{GRADIO_API}/upload_progress?upload_id=probe")]
        try:
            spec = (await self.http.get("/openapi.json", headers=self.auth)).json()
            for path, methods in (spec.get("paths") or {}).items():
                for method in methods:
                    if method.upper() in ("GET", "POST", "PUT", "DELETE"):
                        routes.append((method.upper(), path.replace("{", "").replace("}", "")))
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        for name in await self.gradio_endpoints():
            routes += [("POST", f"{GRADIO_API}/call/{name}"), ("POST", f"{GRADIO_API}/run/{name}"),
                       ("POST", f"{GRADIO_API}/api/{name}")]
        return list(dict.fromkeys(routes))

    async def gradio_endpoints(self) -> list[str]:
        """The demo's API names, read with the key (bearer, then Gradio's login), else without it."""
        attempts: list[dict[str, Any]] = [{"headers": self.auth}, {}]
        try:
            login = await self.http.post("/demo/login", data={"username": "bench", "password": self.api_key})
            if login.status_code == 200:
                attempts.insert(1, {"cookies": dict(login.cookies)})
            self.http.cookies.clear()  # the client keeps the login cookie: the key probes must go without it
        except httpx.HTTPError:
            pass
        for kwargs in attempts:
            try:
                response = await self.http.get(f"{GRADIO_API}/info", **kwargs)
                if response.status_code == 200:
                    return [name.strip("/") for name in response.json().get("named_endpoints", {})]
            except (httpx.HTTPError, ValueError):
                continue
        return ["chat"]

    def probe_body(self, path: str) -> dict[str, Any]:
        """A body that makes an open route do real work (an open /invocations generates)."""
        if path in ("/invocations", "/v1/chat/completions"):
            return {"model": self.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        if path in ("/v1/completions", "/tokenize"):
            return {"model": self.model, "prompt": "hi", "max_tokens": 4}
        if path == "/v1/grade":
            return {"answers": ["1"], "gold": "1"}
        if path.startswith(GRADIO_API):
            return {"data": ["What is 1 + 1?", []], "fn_index": 0, "session_hash": "probe"}
        return {}

    async def key_probes(self) -> None:
        """Each route without a key and with a wrong one. POST routes outside the known list are probed with
        GET: a guarded route says 401 either way, and an open one cannot change the server's state (pause,
        sleep, reset) from a probe."""
        known_post = {"/invocations", "/tokenize", "/detokenize", "/v1/chat/completions", "/v1/completions",
                      "/v1/grade", "/v1/responses", "/v1/embeddings", "/pooling", "/classify", "/score", "/rerank"}
        for method, path in await self.routes():
            if method != "GET" and path not in known_post and not path.startswith(GRADIO_API):
                method = "GET"
            for auth, headers in (("none", {}), ("wrong", {"Authorization": "Bearer wrong-key"})):
                kwargs: dict[str, Any] = {"headers": headers}
                if method != "GET":
                    kwargs["json"] = self.probe_body(path.split("?")[0])
                try:
                    status, body = await asyncio.wait_for(self.head_of(method, path, kwargs), PROBE_SECONDS)
                except (httpx.HTTPError, TimeoutError) as exc:
                    self.tally.failed("key_probe", exc)
                    continue
                self.tally.answered("key_probe", f"{auth} {method} {path}", status, body)
                self.tally.key_probes.append({"method": method, "path": path, "key": auth, "status": status})

    async def head_of(self, method: str, path: str, kwargs: dict[str, Any]) -> tuple[int, bytes]:
        """Status and the first bytes of the body: an open event stream (Gradio's queue) never ends."""
        async with self.http.stream(method, path, **kwargs) as response:
            parts: list[bytes] = []

            async def read() -> None:
                async for part in response.aiter_bytes():
                    parts.append(part)
                    if sum(map(len, parts)) >= 4096:
                        return

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(read(), PROBE_SECONDS / 2)
            return response.status_code, b"".join(parts)

    # ---- after the load -------------------------------------------------------------------------------

    async def engine_requests_left(self) -> dict[str, Any]:
        """vllm:num_requests_running + vllm:num_requests_waiting, after a settle."""
        from prometheus_client.parser import text_string_to_metric_families

        await asyncio.sleep(self.args.settle)
        try:
            response = await self.http.get("/metrics", headers=self.auth)
        except httpx.HTTPError as exc:
            return {"total": None, "reason": f"{type(exc).__name__} on /metrics"}
        if response.status_code != 200:
            return {"total": None, "reason": f"/metrics answered {response.status_code}"}
        found = {"running": 0.0, "waiting": 0.0}
        for family in text_string_to_metric_families(response.text):
            for which in found:
                if family.name == f"vllm:num_requests_{which}":
                    found[which] += sum(sample.value for sample in family.samples)
        return {**{k: int(v) for k, v in found.items()}, "total": int(sum(found.values()))}


def server_timing(header: str | None) -> float | None:
    """Seconds of ``Server-Timing: total;dur=MS``, or None."""
    for metric in (header or "").split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        for param in params:
            if name == "total" and param.startswith("dur="):
                return float(param[4:]) / 1000
    return None


def summarize(tally: Tally, left: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    slowest = max(tally.grade_latencies, default=(None, None))
    unfinished = max(tally.grade_unfinished, default=None)
    open_routes = sorted({(p["method"], p["path"], p["key"], p["status"]) for p in tally.key_probes
                          if p["status"] != 401 and p["path"].split("?")[0] not in OPEN_BY_DESIGN})
    grade_times = [t for t, _ in tally.grade_latencies] + tally.grade_unfinished
    return {
        "requests_sent": dict(tally.sent),
        "statuses": {kind: {str(k): v for k, v in sorted(c.items())} for kind, c in tally.statuses.items()},
        "client_errors": {kind: dict(c) for kind, c in tally.client_errors.items()},
        "server_errors_5xx": len(tally.server_errors),
        "server_error_samples": list({(e["kind"], e["case"]): e for e in tally.server_errors}.values()),
        "non_openai_error_bodies": len(tally.bad_bodies),
        "non_openai_error_samples": list({(e["kind"], e["case"]): e for e in tally.bad_bodies}.values()),
        "grade_flood_429": tally.statuses["grade_flood"].get(429, 0),
        "engine_requests_left": left,
        "math_layer_delay_s": {"p50": percentile(tally.math_delays, 50), "p99": percentile(tally.math_delays, 99),
                               "max": round(max(tally.math_delays), 3) if tally.math_delays else None,
                               "streams": len(tally.math_delays), "majority_missing": tally.majority_missing},
        "grade": {"slowest_s": round(slowest[0], 3) if slowest[0] is not None else None, "slowest_batch": slowest[1],
                  "p50_s": percentile(grade_times, 50),
                  "past_deadline": sum(t > args.grade_deadline + DEADLINE_GRACE for t in grade_times),
                  "server_slowest_s": round(max(tally.grade_server_s), 3) if tally.grade_server_s else None,
                  "server_past_deadline": sum(t > args.grade_deadline for t in tally.grade_server_s),
                  "server_timed": len(tally.grade_server_s),
                  "unfinished": len(tally.grade_unfinished),
                  "longest_unfinished_s": round(unfinished, 3) if unfinished is not None else None,
                  "items_timed_out": tally.grade_items_timed_out},
        "client_loop_lag_s": {"p50": percentile(tally.client_lag, 50), "p99": percentile(tally.client_lag, 99),
                              "max": round(max(tally.client_lag), 3) if tally.client_lag else None},
        "open_routes": [{"method": m, "path": p, "key": k, "status": s} for m, p, k, s in open_routes],
        "malformed_by_case": {case: {str(k): v for k, v in c.items()} for case, c in sorted(tally.by_case.items())},
        "key_probes": tally.key_probes,
    }


def print_report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nreliability, {args.duration:.0f} s of mixed load ({args.streams} stream clients, "
          f"{args.grade_clients} grade-flood clients, 1 malformed-request client, key probes):")
    print("  requests sent: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["requests_sent"].items())))
    for kind, statuses in summary["statuses"].items():
        print(f"    {kind}: " + ", ".join(f"{s}: {n}" for s, n in statuses.items()))
    for kind, errors in summary["client_errors"].items():
        print(f"    {kind} client-side errors: " + ", ".join(f"{e}: {n}" for e, n in errors.items()))
    print(f"  5xx: {summary['server_errors_5xx']}")
    for sample in summary["server_error_samples"]:
        print(f"    {sample['status']} {sample['kind']}: {sample['case']}: {sample['body'][:120]}")
    print(f"  error bodies that are not OpenAI error JSON: {summary['non_openai_error_bodies']}")
    for sample in summary["non_openai_error_samples"]:
        print(f"    {sample['status']} {sample['case']}: {sample['body'][:120]!r}")
    print(f"  /v1/grade 429s (valid under load): {summary['grade_flood_429']}")
    left = summary["engine_requests_left"]
    detail = left.get("reason") or f"running {left.get('running')}, waiting {left.get('waiting')}"
    print(f"  engine requests left after {args.settle:.0f} s: {left.get('total')} ({detail})")
    delay = summary["math_layer_delay_s"]
    print(f"  math-layer delay (n>1 with gold, {delay['streams']} streams): p50 {delay['p50']} s, "
          f"p99 {delay['p99']} s, max {delay['max']} s; majority_answer missing or null in {delay['majority_missing']}")
    grade = summary["grade"]
    print(f"  /v1/grade: slowest {grade['slowest_s']} s ({grade['slowest_batch']}), p50 {grade['p50_s']} s, "
          f"{grade['past_deadline']} past {args.grade_deadline + DEADLINE_GRACE:.0f} s, {grade['unfinished']} unfinished when the "
          f"run stopped waiting (longest {grade['longest_unfinished_s']} s), {grade['items_timed_out']} items timed out")
    print(f"    the server's own time (Server-Timing, {grade['server_timed']} requests): slowest "
          f"{grade['server_slowest_s']} s, {grade['server_past_deadline']} past {args.grade_deadline:g} s")
    lag = summary["client_loop_lag_s"]
    print(f"  this script's own event-loop lag (in every client-side time above): p50 {lag['p50']} s, "
          f"p99 {lag['p99']} s, max {lag['max']} s")
    print(f"  routes that answered a non-401 without a valid key (besides {', '.join(sorted(OPEN_BY_DESIGN))}): "
          f"{len({(r['method'], r['path']) for r in summary['open_routes']})}")
    for route in summary["open_routes"]:
        print(f"    {route['status']} {route['method']} {route['path']} (key: {route['key']})")
    if memory := summary.get("server_memory"):
        print(f"  server memory: peak {memory['peak_total_gib']} GiB resident, all processes ("
              + ", ".join(f"{name} {gib}" for name, gib in memory["peak_by_process_gib"].items())
              + f"); the machine's least available {memory['least_available_gib']} GiB")


class MemoryWatch:
    """Samples the started server's process tree each second: the peak resident memory of each process kind
    (the engine's worker, its core, the HTTP process, the grading workers) and the machine's least available
    memory. A KV cache sized past what the machine can hold shows here long before the OOM killer acts."""

    def __init__(self, pid: int, every: float = 1.0):
        import threading

        self.pid, self.every = pid, every
        self.peaks: Counter = Counter()
        self.peak_total = 0
        self.least_available: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            try:
                root = psutil.Process(self.pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            now: Counter = Counter()
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    now[process.name()] += process.memory_info().rss
            for name, rss in now.items():
                self.peaks[name] = max(self.peaks[name], rss)
            self.peak_total = max(self.peak_total, sum(now.values()))
            available = psutil.virtual_memory().available
            self.least_available = available if self.least_available is None else min(self.least_available, available)

    def summary(self) -> dict[str, Any]:
        gib = 1 << 30
        return {"peak_total_gib": round(self.peak_total / gib, 2),
                "peak_by_process_gib": {name: round(rss / gib, 2) for name, rss in self.peaks.most_common()},
                "least_available_gib": None if self.least_available is None else round(self.least_available / gib, 2)}


async def probe(base_url: str, api_key: str, model: str | None, args: argparse.Namespace) -> dict[str, Any]:
    if model is None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            model = (await http.get("/v1/models", headers={"Authorization": f"Bearer {api_key}"})).json()["data"][0]["id"]
    load = Load(base_url, api_key, model, args)
    try:
        tally = await load.run()
        left = await load.engine_requests_left()
    finally:
        await load.close()
    return summarize(tally, left, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (default: the tiny one, built once and cached)")
    parser.add_argument("--url", help="probe this running server (with --api-key) instead of starting one")
    parser.add_argument("--api-key", help="the key of the server given by --url")
    parser.add_argument("--port", type=int, help="port of the server this script starts (default: a free one)")
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of load")
    parser.add_argument("--count", type=int, help="stop after this many chat streams, if sooner")
    parser.add_argument("--streams", type=int, default=4, help="concurrent chat-stream clients")
    parser.add_argument("--grade-clients", type=int, default=8, help="concurrent /v1/grade flood clients")
    parser.add_argument("--grade-batch", type=int, default=4, help="adversarial answers per /v1/grade request")
    parser.add_argument("--grade-deadline", type=float, default=30.0,
                        help="count /v1/grade requests that take over 1 s longer than this (the server's deadline)")
    parser.add_argument("--disconnect-share", type=float, default=1 / 3, help="share of streams dropped early")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--oversized-mb", type=int, default=32, help="size of the oversized bodies")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--drain", type=float, default=35.0, help="seconds to wait for requests still out")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before reading /metrics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "reliability_bench.json")
    args, server_flags = parser.parse_known_args()
    if args.url and not args.api_key:
        parser.error("--url needs --api-key")
    if args.duration <= 0 or args.streams < 0 or args.grade_clients < 0 or args.grade_batch < 1:
        parser.error("--duration must be positive, --streams and --grade-clients at least 0, --grade-batch at least 1")
    if server_flags and args.url:
        parser.error(f"unrecognized arguments: {' '.join(server_flags)}")
    server_flags = [f for f in server_flags if f != "--"]

    if args.url:
        summary = asyncio.run(probe(args.url.rstrip("/"), args.api_key, None, args))
    else:
        work = Path(tempfile.mkdtemp(prefix="reliability-bench-"))
        model = args.model or tiny_checkpoint()
        port = args.port or free_port()
        cmd = [sys.executable, "-m", "luffy_serve", "--model", model, "--host", "127.0.0.1", "--port", str(port),
               "--api-key", KEY, "--demo", "--served-model-name", "tiny", "--max-model-len", "1024",
               "--disable-uvicorn-access-log", *server_flags]
        print(f"starting luffy-serve on port {port} (log: {work / 'luffy-serve.log'})", flush=True)
        server = start(cmd, port, work / "luffy-serve.log")
        try:
            with MemoryWatch(server.pid) as memory:
                summary = asyncio.run(probe(f"http://127.0.0.1:{port}", KEY, "tiny", args))
            summary["server_memory"] = memory.summary()
        finally:
            stop(server, timeout=120)
    print_report(summary, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, **summary}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
