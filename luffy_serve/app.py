"""The luffy-serve ASGI app: our own routes and gates in front of vLLM's OpenAI app.

Requests flow: API-key check (OpenAI error JSON) -> our routes (``/v1/grade``, ``/demo``) -> 503 while the
engine loads -> vLLM's app wrapped in :class:`MathExtras`. vLLM's app is attached once the engine is up,
so the port answers (503) from the first second instead of refusing connections during a long load.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, model_validator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from luffy_math import GradingPool

from .errors import error_response
from .math_extras import GRADE_MODES, MathExtras

GUARDED_PREFIXES = ("/v1",)
MAX_GRADE_ITEMS = 1024
MAX_GRADE_CHARS = 200_000  # per response, answer or gold


class GradeRequest(BaseModel):
    """Either whole ``responses`` (the last ``\\boxed{}`` is graded) or bare ``answers``."""

    responses: list[str] | None = Field(None, max_length=MAX_GRADE_ITEMS)
    answers: list[str] | None = Field(None, max_length=MAX_GRADE_ITEMS)
    gold: str | list[str] = Field(min_length=1)
    mode: str = "luffy"

    @model_validator(mode="after")
    def _one_input(self) -> GradeRequest:
        if (self.responses is None) == (self.answers is None):
            raise ValueError("give exactly one of 'responses' or 'answers'")
        if self.mode not in GRADE_MODES:
            raise ValueError(f"'mode' must be one of {', '.join(GRADE_MODES)}")
        golds = [self.gold] if isinstance(self.gold, str) else self.gold
        if any(len(t) > MAX_GRADE_CHARS for t in [*(self.responses or self.answers or []), *golds]):
            raise ValueError(f"each response, answer and gold must be at most {MAX_GRADE_CHARS} characters")
        return self

    def texts(self) -> list[str]:
        if self.responses is not None:
            return self.responses
        return [f"\\boxed{{{a}}}" for a in self.answers or []]


class LuffyApp:
    """The outer ASGI app. ``attach`` hands it vLLM's app once the engine is ready."""

    def __init__(self, api_keys: list[str], pool: GradingPool, grade_timeout: float = 30.0):
        self._key_hashes = [hashlib.sha256(k.encode()).digest() for k in api_keys]
        self.pool = pool
        self.grade_timeout = grade_timeout
        self.inner: ASGIApp | None = None
        self.own = self._build_own_routes()

    def attach(self, vllm_app: ASGIApp) -> None:
        self.inner = MathExtras(vllm_app, self.pool, self.grade_timeout)

    def mount_demo(self, demo, path: str = "/demo") -> None:
        import gradio as gr

        self.own = gr.mount_gradio_app(self.own, demo, path=path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.own(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and path.startswith(GUARDED_PREFIXES) and not self._authorized(scope):
            await error_response(401, "Invalid or missing API key.", "AuthenticationError")(scope, receive, send)
            return
        if path == "/v1/grade" or path == "/demo" or path.startswith("/demo/"):
            await self.own(scope, receive, send)
            return
        if self.inner is None:
            await error_response(503, "The model is still loading; retry shortly.", "ServiceUnavailableError")(
                scope, receive, send
            )
            return
        await self.inner(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if not self._key_hashes or scope.get("method") == "OPTIONS":
            return True
        scheme, _, token = (Headers(scope=scope).get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        digest = hashlib.sha256(token.encode()).digest()
        return any(hmac.compare_digest(digest, h) for h in self._key_hashes)

    def _build_own_routes(self) -> FastAPI:
        own = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @own.exception_handler(RequestValidationError)
        async def _invalid(_: Request, exc: RequestValidationError):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
            return error_response(400, f"{first.get('msg', 'invalid request')}", "BadRequestError", where)

        @own.post("/v1/grade")
        async def grade(request: GradeRequest) -> dict:
            """Grade responses (or bare answers) against a gold; add the equivalence-aware majority."""
            texts = request.texts()
            # One worker task per batch is cheaper than one per item; each item keeps its own time bound.
            batch = self.pool.submit_batch([(t, request.gold) for t in texts], request.mode)
            grades = await asyncio.wrap_future(batch)
            answers = [g.extracted for g in grades]
            majority = await asyncio.wrap_future(self.pool.submit_vote(answers)) if answers else None
            return {"object": "grade", "mode": request.mode, "grades": [asdict(g) for g in grades],
                    "majority_answer": majority}

        return own
