"""Small combinators over ``concurrent.futures.Future``, shared by the pool and the host (no other imports)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any


def when_all_done(parts: list[concurrent.futures.Future], outer: concurrent.futures.Future) -> None:
    """Resolve ``outer`` with the list of the parts' results once all are done (or the first failure)."""
    left = [len(parts)]
    lock = threading.Lock()

    def one_done(_: concurrent.futures.Future) -> None:
        with lock:
            left[0] -= 1
            if left[0] > 0:
                return
        if outer.cancelled():
            return
        if any(part.cancelled() for part in parts):
            outer.cancel()
            return
        failure = next((part.exception() for part in parts if part.exception() is not None), None)
        if failure is not None:
            outer.set_exception(failure)
        else:
            outer.set_result([part.result() for part in parts])

    for part in parts:
        part.add_done_callback(one_done)


def chained(inner: concurrent.futures.Future,
            resolve: Callable[[Any, concurrent.futures.Future], None]) -> concurrent.futures.Future:
    """A future that ``resolve(inner.result(), outer)`` settles; a failure of ``inner`` passes through, and
    cancelling either cancels the other."""
    outer: concurrent.futures.Future = concurrent.futures.Future()

    def finish(done: concurrent.futures.Future) -> None:
        if done.cancelled():
            outer.cancel()
        elif outer.cancelled():
            return
        elif done.exception() is not None:
            outer.set_exception(done.exception())
        else:
            resolve(done.result(), outer)

    inner.add_done_callback(finish)
    outer.add_done_callback(lambda mine: inner.cancel() if mine.cancelled() else None)
    return outer


def mapped(inner: concurrent.futures.Future, func: Callable[[Any], Any]) -> concurrent.futures.Future:
    """A future of ``func(inner.result())``; cancelling it cancels ``inner``."""
    return chained(inner, lambda result, outer: outer.set_result(func(result)))
