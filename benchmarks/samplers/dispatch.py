"""Spreading requests over several targets (endpoints, engine replicas) that can fail and come back.

Each request goes to the live target with the fewest in flight, up to a capacity per target. When an attempt
fails because of its target (the server is gone, the replica died), the target is taken out, the request goes
to another one, and the target comes back later: after a rest that doubles with each failure in a row, or when
its backend says it is ready again. A request is sent again only after its earlier attempt failed, so every
request is answered once. Both the openai and the ray backend dispatch through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.samplers.base import Completion, SampleRequest

# A target that failed is left out this long, doubled after each further failure in a row, up to the cap.
REST_SECONDS = 5.0
MAX_REST_SECONDS = 120.0


@dataclass
class Target:
    """One place requests go: its handle, what it has in flight, and until when it is left out."""

    name: str
    handle: Any = None
    in_flight: int = 0
    served: int = 0
    failures_in_a_row: int = 0
    resting_until: float = 0.0
    gone: bool = False  # will never come back (a replica whose restarts are used up)

    def live(self, now: float) -> bool:
        return not self.gone and now >= self.resting_until

    def rest(self, now: float) -> None:
        self.resting_until = now + min(REST_SECONDS * 2 ** (self.failures_in_a_row - 1), MAX_REST_SECONDS)

    def reset(self) -> None:
        self.in_flight = self.served = self.failures_in_a_row = 0
        self.resting_until = 0.0
        self.gone = False


class NoTargetLeft(RuntimeError):
    """Every target is gone for good."""


class Dispatcher:
    """``attempt(target, request)`` makes one try; ``target_failed(error)`` tells the errors that are the
    target's fault (the request may go elsewhere) from the request's own. ``on_failure(target)`` decides when a
    failed target comes back (default: after its rest); it may call ``restore`` or ``retire`` later."""

    def __init__(self, targets: Sequence[Target], capacity: int, give_up_after: int,
                 attempt: Callable[[Target, SampleRequest], Awaitable[Completion]],
                 target_failed: Callable[[BaseException], bool],
                 on_failure: Callable[[Target], None] | None = None):
        self.targets = list(targets)
        self.capacity = capacity
        self.give_up_after = give_up_after  # failed attempts of one request before the run fails
        self.attempt = attempt
        self.target_failed = target_failed
        self.on_failure = on_failure or (lambda target: target.rest(time.monotonic()))
        self.changed: asyncio.Condition | None = None

    async def run(self, requests: list[SampleRequest], on_done: Callable[[Completion], None]) -> None:
        """Answer every request once, calling on_done as each finishes; on an error, cancel the rest and raise."""
        self.changed = asyncio.Condition()
        for target in self.targets:
            target.reset()
        tasks = [asyncio.create_task(self._one(request, on_done)) for request in requests]
        try:
            await asyncio.gather(*tasks)
        finally:  # on a failure, cancel the rest: their connections close and the engines abort them
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def restore(self, target: Target) -> None:
        """The target is ready again."""
        async with self._condition():
            target.resting_until = 0.0
            self._condition().notify_all()

    async def retire(self, target: Target) -> None:
        """The target will not come back."""
        async with self._condition():
            target.gone = True
            self._condition().notify_all()

    def _condition(self) -> asyncio.Condition:
        assert self.changed is not None, "run() first"
        return self.changed

    async def _take(self) -> Target:
        changed = self._condition()
        async with changed:
            while True:
                if all(target.gone for target in self.targets):
                    raise NoTargetLeft(", ".join(target.name for target in self.targets))
                now = time.monotonic()
                free = [t for t in self.targets if t.live(now) and t.in_flight < self.capacity]
                if free:
                    chosen = min(free, key=lambda t: (t.in_flight, t.failures_in_a_row))
                    chosen.in_flight += 1
                    return chosen
                resting = [t.resting_until for t in self.targets if not t.gone and not t.live(now)]
                wait = max(min(resting) - now, 0.01) if resting and min(resting) < math.inf else None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)

    async def _give_back(self, target: Target, failed: bool) -> None:
        changed = self._condition()
        async with changed:
            target.in_flight -= 1
            if failed:
                target.failures_in_a_row += 1
                self.on_failure(target)
            else:
                target.failures_in_a_row = 0
            changed.notify_all()

    async def _one(self, request: SampleRequest, on_done: Callable[[Completion], None]) -> None:
        failures = 0
        while True:
            target = await self._take()
            try:
                completion = await self.attempt(target, request)
            except BaseException as e:
                failed = isinstance(e, Exception) and self.target_failed(e)
                await self._give_back(target, failed=failed)
                if failed:
                    failures += 1
                    if failures < self.give_up_after:
                        continue
                if isinstance(e, Exception):
                    e.luffy_target = target.name  # type: ignore[attr-defined]
                raise
            target.served += 1
            await self._give_back(target, failed=False)
            completion.endpoint = target.name
            on_done(completion)
            return


def target_of(error: BaseException, default: str) -> str:
    """The target an error came from (set by the dispatcher), for one-line messages."""
    return getattr(error, "luffy_target", default)
