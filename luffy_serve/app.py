"""The luffy-serve ASGI app: our own routes and gates in front of vLLM's OpenAI app.

Requests flow: OpenAI error bodies for every error (below) -> API key on every path but the open ones
(``/health``, ``/ping``; ``/metrics`` with ``--public-metrics``; ``/demo`` checks its own login) -> body size
limit -> our routes (``/v1/grade``, ``/demo``) -> 503 while the engine loads -> vLLM's app wrapped in
:class:`MathExtras`. vLLM's app is attached once the engine is up, so the port answers (503) from the first
second instead of refusing connections during a long load.

Error bodies: a response with status >= 400 whose body is not OpenAI error JSON (FastAPI's ``{"detail": ...}``,
Starlette's plain-text 404/405/500) is rewritten into it here, so vLLM's routes are covered as well. Responses
below 400 pass straight through: nothing is buffered or parsed on the streaming path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import math
import time
from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luffy_math import as_boxed
from luffy_math.vote import Majority, exact_groups, tally, vote_groups
from luffy_math.workers import GradingPool
from luffy_math.workers.host_client import GradingHostError

from . import math_metrics
from .errors import error_response, openai_error_body
from .limits import Limits
from .math_extras import MathExtras, mode_problem, unfinished_grouping

logger = logging.getLogger("luffy_serve")

GRADE = "/v1/grade"
ARRIVED = "luffy_arrived"  # scope["state"] key: when a /v1/grade request reached the app (time.monotonic())
OPEN_PATHS = frozenset({"/health", "/ping"})  # load balancers and SageMaker probe these without a key
DEMO = "/demo"
GRADE_NICE = 10  # CPU priority of the /v1/grade workers: below the engine's, so a flood does not slow it
MAX_GRADE_CHARS = 200_000  # per response, answer or gold
# Of a /v1/grade request's deadline, the share kept for sending the answer (at most RESPONSE_RESERVE_S): the
# grading stops that much earlier, so the whole response is out by the deadline counted from its arrival.
RESPONSE_RESERVE_SHARE, RESPONSE_RESERVE_S = 0.05, 0.5
DEMO_AUTH_MESSAGE = "This server asks for its API key: sign in with any user name and the key as password."


class GradeRequest(BaseModel):
    """Either whole ``responses`` (the last ``\\boxed{}`` is graded) or bare ``answers``."""

    responses: list[str] | None = None
    answers: list[str] | None = None
    gold: str | list[str] = Field(min_length=1)
    mode: str = "luffy"

    @model_validator(mode="after")
    def _one_input(self) -> GradeRequest:
        if (self.responses is None) == (self.answers is None):
            raise ValueError("give exactly one of 'responses' or 'answers'")
        problem = mode_problem("mode", self.mode)
        if problem is not None:
            raise ValueError(problem)
        if any(len(t) > MAX_GRADE_CHARS for t in [*(self.responses or self.answers or []), *self.golds()]):
            raise ValueError(f"each response, answer and gold must be at most {MAX_GRADE_CHARS} characters")
        return self

    def golds(self) -> list[str]:
        return [self.gold] if isinstance(self.gold, str) else self.gold

    def texts(self) -> list[str]:
        if self.responses is not None:
            return self.responses
        return [as_boxed(a) for a in self.answers or []]


class GradeQueueFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class GradeAdmission:
    """Counts the /v1/grade items in flight; refuses a request that would take them past the capacity."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._deadlines: dict[int, tuple[int, float]] = {}  # request id -> (items, deadline)

    def admit(self, key: int, items: int, deadline: float) -> None:
        in_flight = sum(n for n, _ in self._deadlines.values())
        if self._deadlines and in_flight + items > self.capacity:
            soonest = min(d for _, d in self._deadlines.values())
            math_metrics.GRADE_REFUSED.inc()
            raise GradeQueueFull(max(1, math.ceil(soonest - time.monotonic())))
        self._deadlines[key] = (items, deadline)
        math_metrics.GRADE_REQUESTS_IN_FLIGHT.inc()
        math_metrics.GRADE_ITEMS_IN_FLIGHT.inc(items)

    def release(self, key: int) -> None:
        released = self._deadlines.pop(key, None)
        if released is not None:
            math_metrics.GRADE_REQUESTS_IN_FLIGHT.dec()
            math_metrics.GRADE_ITEMS_IN_FLIGHT.dec(released[0])


class LuffyApp:
    """The outer ASGI app. ``attach`` hands it vLLM's app once the engine is ready.

    ``pool`` serves the math fields of chat and completions; ``grade_pool`` serves ``/v1/grade`` alone, so a
    flood of hard answers there never delays the math fields (give it its own workers, at a lower priority).
    """

    def __init__(self, api_keys: list[str], pool: GradingPool, grade_pool: GradingPool | None = None,
                 grade_timeout: float = 30.0, limits: Limits | None = None):
        self._key_hashes = [hashlib.sha256(k.encode()).digest() for k in api_keys]
        self.pool = pool
        self.grade_pool = grade_pool or pool
        math_metrics.WORKER_RESTARTS.watch("math_fields", pool)
        if self.grade_pool is not pool:
            math_metrics.WORKER_RESTARTS.watch("grade", self.grade_pool)
        self.grade_timeout = grade_timeout
        self.limits = limits or Limits()
        self.open_paths = OPEN_PATHS | ({"/metrics"} if self.limits.public_metrics else set())
        self.admission = GradeAdmission(self.limits.grade_capacity)
        self._grade_ids = itertools.count()
        self.inner: ASGIApp | None = None
        self.own = self._build_own_routes()
        self._demo = None  # app.demo.MountedDemo: its login, and the routes that login leaves open

    def attach(self, vllm_app: ASGIApp, split_text: bool = False) -> None:
        """``split_text``: split reasoning by text in the math layer (no vLLM reasoning parser)."""
        self.inner = MathExtras(vllm_app, self.pool, self.grade_timeout, split_text=split_text)

    def attach_demo(self, mount, base_url: str, api_key: str | None, model: str | None, path: str = DEMO) -> None:
        """Mount the demo with ``mount`` (``app.demo.mount``), its backend calling this server at ``base_url``
        with ``api_key``. With an API key set, its page and its API ask for the key (Gradio's login: any user
        name, the key as password), and the routes that login leaves open are guarded here."""
        login = self._login if self._key_hashes else None
        self._demo = mount(self.own, base_url, api_key=api_key, model=model, path=path, login=login,
                           login_message=DEMO_AUTH_MESSAGE)
        self.own = self._demo.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.own(scope, receive, send)
            return
        path = scope["path"]
        in_demo = path == DEMO or path.startswith(DEMO + "/")
        if scope["type"] != "http":  # websockets: nothing of ours uses them; keep them behind the key
            if not (in_demo or path in self.open_paths or self._authorized(scope)):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self._route(scope, receive, send, path, in_demo)
            return
        send = _openai_errors(send, keep_detail=in_demo)
        try:
            if (in_demo and self._demo is not None and path.startswith(self._demo.unguarded)
                    and not (self._authorized(scope) or self._demo.logged_in(Request(scope).cookies))):
                await error_response(401, "Sign in to the demo first.", "AuthenticationError")(scope, receive, send)
                return
            if not (in_demo or path in self.open_paths or self._authorized(scope)):
                await error_response(401, "Invalid or missing API key.", "AuthenticationError")(scope, receive, send)
                return
            receive = await self._limit_body(scope, receive, send)
            if receive is not None:
                await self._route(scope, receive, send, path, in_demo)
        except asyncio.CancelledError:  # the server stops (its engine died) before this request could finish
            if not send.started:  # type: ignore[attr-defined]
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await error_response(503, "The server is shutting down; retry shortly.",
                                         "ServiceUnavailableError")(scope, receive, send)
            raise
        except RecursionError:  # a body nested too deeply for a route's JSON parser: the client's fault
            if send.started:  # type: ignore[attr-defined]
                raise
            await error_response(400, "The body is JSON nested too deeply.", "BadRequestError")(scope, receive, send)
        except Exception:
            if send.started:  # type: ignore[attr-defined]
                raise
            logger.exception("request to %s failed", path)
            await error_response(500, "Internal server error.", "InternalServerError")(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str, in_demo: bool) -> None:
        if path == GRADE:
            scope.setdefault("state", {})[ARRIVED] = arrived = time.monotonic()  # its deadline runs from here
            await self.own(scope, receive, _with_server_timing(send, arrived))
        elif in_demo:
            await self.own(scope, receive, send)
        elif self.inner is None:
            await error_response(503, "The model is still loading; retry shortly.", "ServiceUnavailableError")(
                scope, receive, send)
        else:
            await self.inner(scope, receive, send)

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """``receive`` for a body within the size limit, or None after answering 413. A declared length is
        checked at once (the server then never delivers more); a chunked body is read here, up to the limit."""
        limit = self.limits.max_request_bytes
        length = chunked = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await _too_large(limit)(scope, receive, send)
                return None
            return receive
        if chunked is None:
            return receive
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay(b"".join(chunks), receive, message)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return None
            if not message.get("more_body"):
                return _replay(b"".join(chunks), receive)

    def _authorized(self, scope: Scope) -> bool:
        if not self._key_hashes or scope.get("method") == "OPTIONS":  # CORS preflights carry no key
            return True
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and self._key_matches(token)

    def _key_matches(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode()).digest()
        return any(hmac.compare_digest(digest, h) for h in self._key_hashes)

    def _login(self, _user: str, password: str) -> bool:
        return self._key_matches(password)

    def _build_own_routes(self) -> FastAPI:
        own = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @own.exception_handler(RequestValidationError)
        async def _invalid(_: Request, exc: RequestValidationError):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
            return error_response(400, f"{first.get('msg', 'invalid request')}", "BadRequestError", where)

        @own.exception_handler(GradingHostError)
        async def _no_host(_: Request, exc: GradingHostError):
            logger.error("grading host: %s", exc)
            return error_response(503, "This grading mode's workers could not be started; try another mode.",
                                  "ServiceUnavailableError")

        @own.exception_handler(GradeQueueFull)
        async def _full(_: Request, exc: GradeQueueFull):
            response = error_response(429, f"The grading queue is full; retry in {exc.retry_after} s.",
                                      "RateLimitError")
            response.headers["Retry-After"] = str(exc.retry_after)
            return response

        @own.post(GRADE)
        async def grade(request: GradeRequest, raw: Request):
            """Grade responses (or bare answers) against a gold; add the equivalence-aware majority."""
            return await self._grade(request, raw.scope.get("state", {}).get(ARRIVED, time.monotonic()))

        return own

    async def _grade(self, request: GradeRequest, arrived: float):
        limits = self.limits
        texts = request.texts()
        field = "responses" if request.responses is not None else "answers"
        if len(texts) > limits.grade_max_items:
            return error_response(400, f"at most {limits.grade_max_items} items per request", "BadRequestError",
                                  field)
        if sum(map(len, texts)) + sum(map(len, request.golds())) > limits.grade_max_chars:
            return error_response(413, f"at most {limits.grade_max_chars} characters per request, all items and "
                                  "golds together", "RequestTooLargeError", field)
        reserve = min(limits.grade_deadline * RESPONSE_RESERVE_SHARE, RESPONSE_RESERVE_S)
        deadline = arrived + limits.grade_deadline - reserve  # counted from the headers, not from the parsed body
        key = next(self._grade_ids)
        self.admission.admit(key, len(texts), deadline)
        try:
            # Items go out in tasks of a few items; what is not graded by the deadline comes back timed out.
            started = time.monotonic()
            batch = self.grade_pool.submit_batch([(t, request.gold) for t in texts], request.mode, deadline)
            grades = await asyncio.wrap_future(batch)
            math_metrics.observe_grading(request.mode, GRADE, time.monotonic() - started, len(grades),
                                         sum(g.timed_out for g in grades))
            answers = [g.extracted for g in grades]
            majority = await self._vote(answers, deadline) if answers else tally([])
        finally:
            self.admission.release(key)
        return {"object": "grade", "mode": request.mode, "grades": [asdict(g) for g in grades],
                "majority_answer": majority.answer, "majority_reason": majority.reason,
                "majority_counts": majority.counts}

    async def _vote(self, answers: list[str | None], deadline: float) -> Majority:
        """The equivalence-aware vote, or the vote by exact text (reason ``timed_out``) when it is not decided
        by the deadline."""
        majority = await self._vote_groups(answers, deadline)
        math_metrics.count_vote(GRADE, majority)
        return majority

    async def _vote_groups(self, answers: list[str | None], deadline: float) -> Majority:
        """The vote over ``answers`` (grouped in a worker by the deadline), or by exact text when it is not."""
        given = [a for a in answers if a is not None]
        if len(set(given)) <= 1:  # one text (or none): no worker needed
            return tally(exact_groups(given))
        left = deadline - time.monotonic()
        if left > 0:  # else the grading used it all: scheduling a vote would only kill a worker
            try:
                grouping = self.grade_pool.submit(vote_groups, list(answers), items=len(given), deadline=deadline,
                                                  on_timeout=unfinished_grouping, on_crash=unfinished_grouping)
                groups = await asyncio.wait_for(asyncio.wrap_future(grouping), left)
            except Exception:  # wait_for cancelled the grouping (which kills its worker), or the pool is closing
                groups = None
            if groups is not None:
                return tally(groups)
        by_text = tally(exact_groups(given))
        return Majority(by_text.answer, math_metrics.TIMED_OUT, by_text.counts)


def _with_server_timing(send: Send, arrived: float) -> Send:
    """``send`` that adds ``Server-Timing: total;dur=MS`` (time from arrival to the answer's start) to the
    response, so a client can tell the server's time from its own queueing."""

    async def timed(message: Message) -> None:
        if message["type"] == "http.response.start":
            took = (time.monotonic() - arrived) * 1000
            headers = [*message.get("headers", []), (b"server-timing", f"total;dur={took:.1f}".encode())]
            message = {**message, "headers": headers}
        await send(message)

    return timed


def _too_large(limit: int):
    return error_response(413, f"The request body is larger than {limit} bytes.", "RequestTooLargeError")


def _replay(body: bytes, receive: Receive, last: Message | None = None) -> Receive:
    """A receive that gives ``body`` once, then goes on live (so a disconnect still reaches the app)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if last is not None:
        pending.append(last)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _openai_errors(send: Send, keep_detail: bool) -> Send:
    """Wrap ``send``: responses below 400 go straight through; an error body that is not OpenAI error JSON is
    rewritten into it. ``keep_detail`` keeps FastAPI's ``detail`` beside it (Gradio's page reads it)."""
    held: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal held
        if held is None:
            if message["type"] == "http.response.start":
                wrapped.started = True  # type: ignore[attr-defined]
                if message["status"] >= 400:
                    held = message
                    return
            await send(message)
            return
        if message["type"] != "http.response.body":
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        status, body = held["status"], b"".join(chunks)
        rewritten = openai_error_body(status, body, keep_detail)
        headers = held.get("headers", [])
        if rewritten is not None:
            body = rewritten
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({**held, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    wrapped.started = False  # type: ignore[attr-defined]
    return wrapped
