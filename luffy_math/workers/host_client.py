"""The owner's side of a grading host: :class:`GradingHost` starts the host process on another interpreter and
sends it requests.

Workers cannot be forked from this process into another environment (multiprocessing hands a child its
parent's executable and ``sys.path``), so a host is started with the other interpreter
(``python -m luffy_math.workers.host``, :mod:`luffy_math.workers.host`). The two speak JSON lines: requests
on the host's stdin, replies on its stdout; the host exits when its stdin closes. If the host dies, what it
had not answered comes back as from a dead worker, and the next request starts a new host; a request with a
deadline is settled by then (plus ``ANSWER_GRACE_SECONDS``) even if the host stops answering.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import queue
import select
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from luffy_math.grader import Grade, crashed_grade, timed_out_grade
from luffy_math.vote import exact_majority

# Seconds a new host may take to say it is ready (a fresh interpreter importing sympy on a busy machine).
START_SECONDS = 120.0
# Past a request's deadline, how long the host may still take before its owner gives up on the answer
# (the host's own workers are killed KILL_GRACE_SECONDS after it).
ANSWER_GRACE_SECONDS = 5.0
# After a host failed to start, requests fail at once for this long instead of each trying again.
RETRY_START_SECONDS = 10.0


class GradingHostError(RuntimeError):
    """The host could not be started, or failed a request."""


class _Request:
    """One request to the host: its future, and what it resolves to if the host dies or stays silent."""

    def __init__(self, message: dict[str, Any], decode: Callable[[Any], Any], on_crash: Callable[[], Any],
                 on_timeout: Callable[[], Any]) -> None:
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.message = message
        self.decode = decode
        self.on_crash = on_crash
        self.on_timeout = on_timeout
        self.timer: threading.Timer | None = None
        self.sent_on: tuple[_Connection, int] | None = None  # (connection, id) once sent
        self._lock = threading.Lock()
        self._finished = False

    def finish(self, value: Any = None, error: BaseException | None = None) -> bool:
        """Settle the future once (later calls do nothing); False when it was already settled or cancelled."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.set_running_or_notify_cancel():
            return False
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(value)
        return True

    @property
    def finished(self) -> bool:
        return self._finished or self.future.cancelled()

    def forget(self) -> None:
        """Its owner no longer wants the answer (cancelled, or past its deadline): tell the host to drop it."""
        if self.sent_on is not None:
            connection, request_id = self.sent_on
            if connection.take(request_id) is not None:
                connection.send({"id": request_id, "op": "cancel"})


class _Connection:
    """One host process, the requests it has not answered, and the thread that reads its answers."""

    def __init__(self, process: subprocess.Popen, hello: dict[str, Any]) -> None:
        self.process = process
        self.hello = hello
        self.pending: dict[int, _Request] = {}
        self.lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, name="luffy-grading-host-reader", daemon=True).start()

    def send(self, message: dict[str, Any]) -> bool:
        data = (json.dumps(message) + "\n").encode()
        with self.lock:
            if not self.alive:
                return False
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(data)
                self.process.stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    def add(self, request_id: int, request: _Request) -> bool:
        with self.lock:
            if not self.alive:
                return False
            self.pending[request_id] = request
            return True

    def take(self, request_id: int) -> _Request | None:
        with self.lock:
            return self.pending.pop(request_id, None)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            request = self.take(message["id"])
            if request is None:
                continue  # given up on (deadline) or cancelled
            if "error" in message:
                request.finish(error=GradingHostError(message["error"]))
                continue
            try:
                value = request.decode(message["result"])
            except Exception as exc:
                request.finish(error=exc)
            else:
                request.finish(value)
        with self.lock:  # the host is gone: whatever it had not answered is lost with it
            self.alive = False
            left, self.pending = list(self.pending.values()), {}
        for request in left:
            request.finish(request.on_crash())

    def close(self) -> None:
        with self.lock:
            self.alive = False
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()  # the host's signal to stop
            except OSError:
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_hello(process: subprocess.Popen, seconds: float) -> dict[str, Any] | None:
    """The host's first line (it says it is ready), or None if it exited or stayed silent for ``seconds``."""
    assert process.stdout is not None
    stream: BinaryIO = process.stdout  # type: ignore[assignment]
    ready, _, _ = select.select([stream], [], [], seconds)
    if not ready:
        return None
    line = stream.readline()
    if not line:
        return None
    return json.loads(line).get("hello")


class GradingHost:
    """A grading host on ``python``, started on first use and again after it died; close() stops it.

    Requests go out through one sender thread, which also starts the host: a caller (a server's event loop)
    never waits for a host to start, only its future does.
    """

    def __init__(self, python: str, workers: int, timeout: float, nice: int = 0) -> None:
        self.python = python
        self._command = [python, "-m", "luffy_math.workers.host", "--workers", str(workers),
                         "--timeout", str(timeout), "--nice", str(nice)]
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._failed: tuple[float, str] | None = None  # (when, why) the last start failed
        self._ids = itertools.count()
        self._outbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._closed = False
        self.restarts = 0  # hosts started after the one before died

    def hello(self) -> dict[str, Any]:
        """What the host said of itself on start: its interpreter and grading-library versions."""
        return self._connect().hello

    @property
    def pid(self) -> int | None:
        """The process id of the running host, or None while none runs (not started yet, or found dead)."""
        connection = self._connection
        return connection.process.pid if connection is not None and connection.alive else None

    def _connect(self) -> _Connection:
        """The live connection, starting a host if there is none. A start that failed is not tried again for
        RETRY_START_SECONDS: the requests queued behind it fail at once instead of waiting one start each."""
        with self._lock:
            if self._closed:
                raise RuntimeError("GradingPool is closed")
            if self._connection is not None and self._connection.alive:
                return self._connection
            if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_START_SECONDS:
                raise GradingHostError(self._failed[1])
            try:
                process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            except OSError as exc:
                self._failed = (time.monotonic(), f"cannot start a grading host with {self.python}: {exc}")
                raise GradingHostError(self._failed[1]) from exc
            hello = _read_hello(process, START_SECONDS)
            if hello is None:
                process.kill()
                code = process.wait()
                self._failed = (time.monotonic(), f"the grading host on {self.python} did not start (exit code "
                                f"{code}); its error is on stderr")
                raise GradingHostError(self._failed[1])
            self._failed = None
            if self._connection is not None:  # the host before this one died
                self.restarts += 1
            self._connection = _Connection(process, hello)
            return self._connection

    def _send_all(self) -> None:
        while True:
            request = self._outbox.get()
            if request is None:
                return
            if request.finished:
                continue
            try:
                connection = self._connect()
            except Exception as exc:
                request.finish(error=exc)
                continue
            request_id = next(self._ids)
            request.sent_on = (connection, request_id)
            if not connection.add(request_id, request):
                request.finish(request.on_crash())
                continue
            if request.finished:  # cancelled or timed out while the host started
                request.forget()
            elif not connection.send({"id": request_id, **request.message}) and connection.take(request_id):
                request.finish(request.on_crash())

    def submit(self, op: str, payload: dict[str, Any], decode: Callable[[Any], Any], on_crash: Callable[[], Any],
               on_timeout: Callable[[], Any], deadline: float | None = None) -> concurrent.futures.Future:
        """Future of the host's answer to ``op``, passed through ``decode``; ``on_crash()`` if the host dies
        first, ``on_timeout()`` if a deadline passes (plus ANSWER_GRACE_SECONDS) without an answer."""
        request = _Request({"op": op, "deadline": deadline, **payload}, decode, on_crash, on_timeout)
        with self._lock:
            if self._closed:
                raise RuntimeError("GradingPool is closed")
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_all, name="luffy-grading-host-sender",
                                                daemon=True)
                self._sender.start()
        if deadline is not None:
            def give_up() -> None:
                request.forget()
                request.finish(on_timeout())

            request.timer = threading.Timer(max(deadline - time.monotonic(), 0.0) + ANSWER_GRACE_SECONDS, give_up)
            request.timer.daemon = True
            request.timer.start()
        request.future.add_done_callback(lambda mine: request.forget() if mine.cancelled() else None)
        self._outbox.put(request)
        return request.future

    def submit_batch(self, items: Sequence[tuple[str, str | list[str]]], mode: str,
                     deadline: float | None = None) -> concurrent.futures.Future:
        items = [(response, gold) for response, gold in items]
        return self.submit("batch", {"items": items, "mode": mode}, _decode_grades,
                           lambda: [crashed_grade(response, mode) for response, _ in items],
                           lambda: [timed_out_grade(response, mode) for response, _ in items], deadline)

    def submit_modes(self, response: str, gold: str | list[str], modes: Sequence[str]) -> concurrent.futures.Future:
        return self.submit("modes", {"response": response, "gold": gold, "modes": list(modes)}, _decode_grades,
                           lambda: [crashed_grade(response, mode) for mode in modes],
                           lambda: [timed_out_grade(response, mode) for mode in modes])

    def submit_vote(self, answers: list[str | None], deadline: float | None = None) -> concurrent.futures.Future:
        return self.submit("vote", {"answers": answers}, lambda answer: answer,
                           lambda: exact_majority(answers), lambda: exact_majority(answers), deadline)

    def close(self) -> None:
        """Stop the host; requests not sent yet fail, those it had not answered end as from a dead worker."""
        with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
            sender = self._sender
        self._outbox.put(None)
        if sender is not None:
            sender.join()
        while True:
            try:
                left = self._outbox.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.finish(error=RuntimeError("GradingPool is closed"))
        if connection is not None:
            connection.close()


def _decode_grades(result: list[dict[str, Any]]) -> list[Grade]:
    return [Grade(**fields) for fields in result]
