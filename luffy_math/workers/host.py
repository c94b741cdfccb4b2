"""A grading host: a :class:`~luffy_math.workers.pool.GradingPool` on this interpreter that another process
drives, run as ``python -m luffy_math.workers.host --workers N --timeout S [--nice K]``.

Its owner (:class:`~luffy_math.workers.host_client.GradingHost`) starts it with the interpreter of another
environment (LUFFY's pinned ``.venv-exact``), because workers cannot be forked into another environment. It
reads JSON-line requests on stdin (``batch``, ``modes``, ``vote``, ``cancel``) and writes one reply per
request on stdout, its first line a ``hello`` that says which interpreter and grading libraries it runs;
everything else it prints goes to stderr. The pool keeps its per-item bounds and kills. It exits when its
stdin closes (its owner closed it or died).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, BinaryIO

from luffy_math.pins import luffy_pins, under_luffy_pins
from luffy_math.workers.futures import when_all_done
from luffy_math.workers.pool import GradingPool
from luffy_util.versions import installed_versions


def _serve(pool: GradingPool, requests: BinaryIO, write: Callable[[dict[str, Any]], None]) -> None:
    running: dict[int, concurrent.futures.Future] = {}
    lock = threading.Lock()

    def answer(request_id: int, done: concurrent.futures.Future) -> None:
        with lock:
            running.pop(request_id, None)
        if done.cancelled():
            return  # its owner gave up on it
        if done.exception() is not None:
            write({"id": request_id, "error": f"{type(done.exception()).__name__}: {done.exception()}"})
            return
        result = done.result()
        if isinstance(result, list):
            result = [asdict(grade) for grade in result]
        write({"id": request_id, "result": result})

    for line in requests:
        message = json.loads(line)
        request_id, op = message["id"], message["op"]
        if op == "cancel":
            with lock:
                future = running.pop(request_id, None)
            if future is not None:
                future.cancel()
            continue
        try:
            if op == "batch":
                future = pool.submit_batch([tuple(item) for item in message["items"]], message["mode"],
                                           deadline=message["deadline"])
            elif op == "modes":
                parts = pool.submit_modes(message["response"], message["gold"], message["modes"])
                future = concurrent.futures.Future()
                when_all_done(list(parts.values()), future)
            elif op == "vote":
                future = pool.submit_vote(message["answers"], deadline=message["deadline"])
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as exc:
            write({"id": request_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        with lock:
            running[request_id] = future
        future.add_done_callback(lambda done, request_id=request_id: answer(request_id, done))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A grading host: a GradingPool driven over stdin and stdout.")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else would print goes to stderr, never into the replies
    write_lock = threading.Lock()

    def write(message: dict[str, Any]) -> None:
        with write_lock:
            replies.write((json.dumps(message) + "\n").encode())
            replies.flush()

    with GradingPool(workers=args.workers, timeout=args.timeout, nice=args.nice) as pool:
        write({"hello": {"python": sys.executable, "under_luffy_pins": under_luffy_pins(),
                         "versions": installed_versions(list(luffy_pins()))}})
        _serve(pool, sys.stdin.buffer, write)


if __name__ == "__main__":
    main()
