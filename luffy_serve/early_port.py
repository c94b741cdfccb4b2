"""The port answers from the first second: one listening socket, and the app behind it swapped once ready.

luffy-serve binds and listens before anything heavy is imported; from then a connection is never refused
(the kernel queues it until uvicorn accepts it a moment later). Until the engine is ready every HTTP request,
``/health`` included, gets 503 with ``Retry-After`` and an OpenAI error body that says what is loading;
then :meth:`StartingApp.ready` hands every later request to the real app, on the same server and socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

logger = logging.getLogger("luffy_serve")

BACKLOG = 2048  # connections the kernel queues before uvicorn accepts them (uvicorn's own default)
RETRY_AFTER_S = 5  # what a 503 asks a client to wait before it tries again


def bind_socket(host: str | None, port: int) -> socket.socket:
    """The listening socket, bound and listening before the engine loads: a taken port fails in a second, and
    connections made while luffy-serve starts wait in the kernel's queue instead of being refused."""
    host = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class StartingApp:
    """The ASGI app uvicorn serves: 503 while ``stage`` says what is loading, then the app given to ``ready``."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stage = "starting"
        self.app: Any = None

    def set_stage(self, stage: str) -> None:
        """Say what loads now (in the 503 bodies and in the log)."""
        self.stage = stage
        logger.info("%s", stage[0].upper() + stage[1:])

    def ready(self, app: Any) -> None:
        self.app = app

    @property
    def loading(self) -> bool:
        return self.app is None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the real app's lifespan runs in lifespan_of, when it is attached
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await self._unavailable(send)
        else:  # a websocket: closed with "try again later"
            await send({"type": "websocket.close", "code": 1013})

    async def _unavailable(self, send: Any) -> None:
        waited = math.floor(time.monotonic() - self.started)
        body = json.dumps({"error": {
            "message": f"luffy-serve is starting: {self.stage} ({waited} s so far); retry in {RETRY_AFTER_S} s.",
            "type": "ServiceUnavailableError", "param": None, "code": 503}}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def lifespan_of(app: Any) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan (startup on entry, shutdown on exit) with uvicorn's own runner, for an app
    attached to a server that is already serving."""
    import uvicorn
    from uvicorn.lifespan.on import LifespanOn

    lifespan = LifespanOn(uvicorn.Config(app, lifespan="on", log_level=logging.WARNING))
    await lifespan.startup()
    if lifespan.should_exit:
        raise RuntimeError(f"the app's start-up failed: {lifespan.error_occurred or 'see the log'}")
    try:
        yield
    finally:
        await lifespan.shutdown()
