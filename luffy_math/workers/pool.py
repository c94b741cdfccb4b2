"""Grading in worker processes with a hard per-item bound.

Each item runs in a pebble worker process under its own signal deadline; a worker still busy
``KILL_GRACE_SECONDS`` after that (a long C call that no signal can interrupt) is killed and replaced, and the
item labelled timed out. Bulk grading sends items in batches (one task per batch costs far less than one per
item); a batch whose worker is killed is graded again item by item, so the bound stays per item. Workers
fork from a warmed-up fork server, never from the parent, which may run threads (a server, a vLLM engine).
A batch may carry a deadline (a server's bound on one request): what is not graded by then comes back timed
out and its work is dropped, queued tasks cancelled and running ones killed. A worker that dies while no task
runs breaks pebble's whole pool (its error state); the next task then starts a fresh one (see ``_renew``).
Every worker started in place of one that was killed or died is counted (:meth:`GradingPool.restarts`), for a
server's metrics.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import multiprocessing.context
import operator
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pebble import ProcessExpired, ProcessPool

from luffy_math.grader import (
    MODES,
    Grade,
    check_mode,
    crashed_grade,
    grade,
    graded_in_process,
    grading_key,
    timed_out_grade,
)
from luffy_math.pins import require_exact_python, same_interpreter
from luffy_math.vote import exact_majority, majority_vote
from luffy_math.workers import default_workers
from luffy_math.workers.futures import chained, mapped, when_all_done
from luffy_math.workers.host_client import GradingHost

# Extra seconds after an item's own (signal) timeout before its worker is killed.
KILL_GRACE_SECONDS = 2.0
# Most items one worker task grades (see batch_size).
MAX_BATCH = 32
# Address-space cap per worker: a runaway sympy expression gets a MemoryError instead of eating the machine.
WORKER_MEMORY_BYTES = 4 << 30
# Why a worker was replaced (GradingPool.restarts): killed past its bound, died under a task, killed because
# nobody wanted its task any more (a deadline passed, the client left), its pebble pool broke (all of its
# workers), the grading host on another interpreter died (one host, started again on the next request).
RESTART_REASONS = ("timeout", "died", "dropped", "pool_broke", "host_died")


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers fork from a fork server that has already imported and warmed up the grader, so a worker (and
    its replacement after a kill) starts in milliseconds. The fork server itself starts as a fresh
    interpreter, so nothing is forked from a parent that runs threads (a server, a vLLM engine)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["luffy_math.workers.warmup"])
    return context


def _start_worker(nice: int) -> None:
    """Cap the worker's memory, lower its priority by ``nice``; import (and so warm up) the grader where the
    fork server did not."""
    import resource

    if nice:
        os.nice(nice)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = WORKER_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(WORKER_MEMORY_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    import luffy_math.workers.warmup  # noqa: F401


def _retire(pool: ProcessPool, stranded: set[concurrent.futures.Future]) -> None:
    """Stop a broken pebble pool (its threads and the workers still alive), then fail what it never settled: a
    task queued as it broke stays pending there for good (pebble settles only the tasks it had sent out)."""
    pool.stop()
    pool.join()
    for future in stranded.copy():
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # settled or cancelled meanwhile
            future.set_exception(BrokenProcessPool("the grading workers' pool broke"))


def _grade_in_worker(response: str, gold: str | list[str], mode: str, timeout: float,
                     deadline: float | None = None) -> Grade:
    return _grade_jobs_in_worker([(response, gold, mode)], timeout, deadline)[0]


Item = tuple[str, "str | list[str]"]  # (response, gold)
Job = tuple[str, "str | list[str]", str]  # (response, gold, mode)


def _grade_jobs_in_worker(jobs: list[Job], timeout: float, deadline: float | None = None) -> list[Grade]:
    """Each job under its own ``timeout``; with a ``deadline`` (a ``time.monotonic()`` value: one clock for all
    processes of a machine) under the time left at most, and past it not graded but labelled timed out."""
    grades = []
    for response, gold, mode in jobs:
        left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        grades.append(_grade_or_time_out(response, gold, mode, left) if left > 0 else timed_out_grade(response, mode))
    return grades


def _grade_or_time_out(response: str, gold: str | list[str], mode: str, seconds: float) -> Grade:
    """grade(), where a deadline signal that escaped its owner labels the item timed out instead of failing
    the whole batch (and with it a server's request)."""
    try:
        return grade(response, gold, mode=mode, timeout=seconds)  # type: ignore[arg-type]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # luffy_math.deadline's _Expired
        return timed_out_grade(response, mode)


def distinct_items(items: Sequence[Item], mode: str) -> tuple[list[Item], list[int]]:
    """The items that need grading, one per :func:`~luffy_math.grader.grading_key`, and for each input item
    the position of the one whose Grade it shares. Samples of one problem often box the same answer: in
    "luffy" mode they are graded once."""
    first: dict[tuple[str | None, tuple[str, ...]], int] = {}
    unique: list[Item] = []
    where: list[int] = []
    for response, gold in items:
        position = first.setdefault(grading_key(response, gold, mode), len(unique))
        if position == len(unique):
            unique.append((response, gold))
        where.append(position)
    return unique, where


class GradingPool:
    """Long-lived grading workers for servers and the harness; use as a context manager or call close().

    The workers run this interpreter, except where another is needed: with ``python`` (the interpreter of
    another environment, e.g. one whose LaTeX parser is complete) all grading goes to workers on that one,
    and "luffy_exact" items always go to the environment with LUFFY's pins (:mod:`luffy_math.pins`). Such
    workers live in a host process on that interpreter (:mod:`luffy_math.workers.host`, driven through
    :mod:`luffy_math.workers.host_client`), started on first use.
    """

    def __init__(self, workers: int | None = None, timeout: float = 10.0, nice: int = 0,
                 python: str | None = None) -> None:
        """``nice`` > 0 runs the workers at a lower CPU priority: grading beside an engine on the same cores
        (the harness, the server) then takes only the time the engine leaves, instead of slowing it."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, got {nice}")
        self.workers = workers or default_workers()
        self.timeout = timeout
        self.nice = nice
        self.python = None if python is None or same_interpreter(python) else python
        self._pool = None if self.python else self._new_pebble_pool()
        self._scheduled: set[concurrent.futures.Future] = set()  # the current pebble pool's unsettled tasks
        self._retiring: list[threading.Thread] = []  # stopping broken pebble pools (see _renew)
        self._lock = threading.Lock()
        self._closed = False
        self._unfinished: set[concurrent.futures.Future] = set()
        self._hosts: dict[str, GradingHost] = {}
        self._restarts = dict.fromkeys(RESTART_REASONS, 0)
        self._restarts_lock = threading.Lock()

    def restarts(self) -> dict[str, int]:
        """Workers replaced so far, by reason (:data:`RESTART_REASONS`)."""
        with self._restarts_lock:
            counts = dict(self._restarts)
        counts["host_died"] += sum(host.restarts for host in list(self._hosts.values()))
        return counts

    def _count_restart(self, reason: str, workers: int = 1) -> None:
        with self._restarts_lock:
            self._restarts[reason] += workers

    def _new_pebble_pool(self) -> ProcessPool:
        return ProcessPool(max_workers=self.workers, initializer=_start_worker, initargs=(self.nice,),
                           context=_worker_context())

    def _renew(self, broken: ProcessPool) -> None:
        """Under ``self._lock``: replace the pebble pool ``broken`` with a fresh one, once (later calls for the
        same pool do nothing). pebble 5 puts its whole pool in an error state when a worker dies while no task
        runs ("All workers expired"): every later schedule() raises, so without this one killed idle worker
        would fail all grading until a restart. The tasks the broken pool had sent out end as if their worker
        died; the broken pool is stopped in the background and what it never settled fails the same way."""
        if self._closed or self._pool is not broken:
            return
        stranded, self._scheduled = self._scheduled, set()
        self._pool = self._new_pebble_pool()
        self._count_restart("pool_broke", self.workers)
        retiring = threading.Thread(target=_retire, args=(broken, stranded), name="luffy-grading-pool-retire",
                                    daemon=True)
        retiring.start()
        self._retiring = [thread for thread in self._retiring if thread.is_alive()] + [retiring]
        logging.getLogger(__name__).warning("the grading workers' pool broke (a worker died while none ran a task): "
                                            "started a fresh pool of %d workers", self.workers)

    def _schedule(self, func: Callable[..., Any], args: tuple[Any, ...], timeout: float
                  ) -> tuple[ProcessPool, concurrent.futures.Future]:
        """Under ``self._lock``: (the pebble pool, its future of ``func(*args)``), on a fresh pool if the
        current one is broken (see _renew)."""
        pool = self._pool
        assert pool is not None
        if not pool.active:  # pebble's error state: no pool here is ever stopped but by close()
            self._renew(pool)
            pool = self._pool
        try:
            inner = pool.schedule(func, args=args, timeout=timeout)
        except RuntimeError:  # "Unexpected error within the Pool": it broke since the check above
            if pool.active:
                raise
            self._renew(pool)
            pool = self._pool
            inner = pool.schedule(func, args=args, timeout=timeout)
        scheduled = self._scheduled
        scheduled.add(inner)
        inner.add_done_callback(scheduled.discard)
        return pool, inner

    def host(self, mode: str | None) -> GradingHost | None:
        """The host process that grades ``mode`` (None: votes) on another interpreter, started on first use
        (``.hello()`` says what it runs, ``.pid`` which process it is), or None when this process's own
        workers grade it."""
        if self.python:
            python = self.python
        elif mode is not None and not graded_in_process(mode):
            python = require_exact_python()
        else:
            return None
        with self._lock:
            if self._closed:
                raise RuntimeError("GradingPool is closed")
            if python not in self._hosts:
                self._hosts[python] = GradingHost(python, self.workers, self.timeout, self.nice)
            return self._hosts[python]

    def submit(self, func: Callable[..., Any], *args: Any, items: int = 1, deadline: float | None = None,
               on_timeout: Callable[[], Any] | None = None,
               on_crash: Callable[[], Any] | None = None) -> concurrent.futures.Future:
        """Future of ``func(*args)`` run in one of this process's workers (``func`` must be picklable: a
        module-level function), bounded as ``items`` items: killed ``items * timeout`` plus
        KILL_GRACE_SECONDS after it starts. A kill resolves the future with ``on_timeout()``, a worker that
        died under it (memory, a crash in C) with ``on_crash()``; without them the future raises
        ``TimeoutError`` or pebble's ``ProcessExpired``. With a ``deadline`` (a ``time.monotonic()`` value) the
        kill comes by then (plus the grace) at the latest, and cancelling the future kills a running task
        too: whoever set a deadline does not want the work any more. A task on a pebble pool that broke
        (see _renew) ends as if its worker died."""
        outer: concurrent.futures.Future = concurrent.futures.Future()
        bound = items * self.timeout
        if deadline is not None:
            bound = min(bound, max(deadline - time.monotonic(), 0.0))
        with self._lock:
            if self._closed:
                raise RuntimeError("GradingPool is closed")
            if self._pool is None:
                raise RuntimeError(f"this GradingPool grades on {self.python}: it has no workers of its own to run "
                                   "functions in")
            pool, inner = self._schedule(func, args, bound + KILL_GRACE_SECONDS)
            self._unfinished.add(outer)

        def relay(done: concurrent.futures.Future) -> None:
            if done.cancelled():
                outer.cancel()
                return
            if not outer.set_running_or_notify_cancel():
                return
            try:
                outer.set_result(done.result())
            except (concurrent.futures.TimeoutError, TimeoutError) as exc:
                self._count_restart("timeout")  # pebble killed the worker past its bound
                if on_timeout is None:
                    outer.set_exception(exc)
                else:
                    outer.set_result(on_timeout())
            except ProcessExpired as exc:
                self._count_restart("died")
                if on_crash is None:
                    outer.set_exception(exc)
                else:
                    outer.set_result(on_crash())
            except BrokenProcessPool as exc:  # the pool broke (or is closing): no worker will run this task
                with self._lock:
                    self._renew(pool)
                    closed = self._closed
                if on_crash is None or closed:
                    outer.set_exception(exc)
                else:
                    outer.set_result(on_crash())
            except BaseException as exc:  # anything else is reported on the future, never left hanging
                outer.set_exception(exc)

        def forward_cancel(mine: concurrent.futures.Future) -> None:
            with self._lock:
                self._unfinished.discard(mine)
            # Nobody waits any more (e.g. the HTTP client left): drop the item if it has not started. A running
            # one is left to finish, bounded by its timeout (cancelling it kills and respawns a worker), unless
            # it had a deadline: then it is killed.
            if mine.cancelled() and (deadline is not None or not inner.running()):
                running = inner.running()
                if inner.cancel() and running:  # pebble stops the worker of a cancelled running task
                    self._count_restart("dropped")

        inner.add_done_callback(relay)
        outer.add_done_callback(forward_cancel)
        return outer

    def submit_grade(self, response: str, gold: str | list[str], mode: str = "luffy",
                     deadline: float | None = None) -> concurrent.futures.Future:
        """Future of the Grade of one response; past the timeout (or the ``deadline``, a ``time.monotonic()``
        value) it resolves to a timed-out Grade."""
        check_mode(mode)
        host = self.host(mode)
        if host is not None:
            return mapped(host.submit_batch([(response, gold)], mode, deadline), operator.itemgetter(0))
        return self.submit(_grade_in_worker, response, gold, mode, self.timeout, deadline, deadline=deadline,
                           on_timeout=lambda: timed_out_grade(response, mode),
                           on_crash=lambda: crashed_grade(response, mode))

    def submit_batch(self, items: Sequence[Item], mode: str = "luffy",
                     deadline: float | None = None) -> concurrent.futures.Future:
        """Future of the Grades of several items graded in one worker task, which saves the per-task cost.

        Each item keeps its own signal deadline inside the worker. If the batch's worker has to be killed or
        dies, its items are graded again one task each, so every item still gets its own hard bound. Items
        that share a grading key are graded once (see :func:`distinct_items`).

        With a ``deadline`` (a ``time.monotonic()`` value) the items go out in tasks of a few items and the
        future resolves by the deadline: items not graded by then come back timed out, their queued tasks
        are dropped and running ones killed, so no worker time is spent on them after it.
        """
        check_mode(mode)
        unique, where = distinct_items(items, mode)
        host = self.host(mode)
        if host is not None:
            graded = host.submit_batch(unique, mode, deadline)
        else:
            jobs = [(response, gold, mode) for response, gold in unique]
            graded = self.submit_jobs(_grade_jobs_in_worker, jobs) if deadline is None else self._jobs_until(jobs, deadline)
        return mapped(graded, lambda grades: [grades[position] for position in where])

    def _jobs_until(self, jobs: list[Job], deadline: float) -> concurrent.futures.Future:
        """The Grades of ``jobs``, settled at ``deadline`` at the latest (see submit_batch)."""
        outer: concurrent.futures.Future = concurrent.futures.Future()
        size = batch_size(len(jobs), self.workers)
        chunks = [range(start, min(start + size, len(jobs))) for start in range(0, len(jobs), size)]
        parts = {self.submit_jobs(_grade_jobs_in_worker, [jobs[p] for p in chunk], deadline): chunk for chunk in chunks}
        grades: list[Grade | None] = [None] * len(jobs)
        lock = threading.Lock()
        settled = [False]

        def settle(failure: BaseException | None = None) -> None:
            with lock:
                if settled[0]:
                    return
                settled[0] = True
                result = [g if g is not None else timed_out_grade(response, mode)
                          for g, (response, _, mode) in zip(grades, jobs, strict=True)]
            timer.cancel()
            for part in parts:  # at the deadline: drop (queued) or kill (running) what is left
                part.cancel()
            if outer.cancelled():
                return
            if failure is not None:
                outer.set_exception(failure)
            else:
                outer.set_result(result)

        def part_done(part: concurrent.futures.Future) -> None:
            if part.cancelled():
                return
            if part.exception() is not None:
                settle(part.exception())
                return
            with lock:
                for position, result in zip(parts[part], part.result(), strict=True):
                    grades[position] = result
            if all(p.done() for p in parts):
                settle()

        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), settle)
        timer.daemon = True
        outer.add_done_callback(lambda mine: settle() if mine.cancelled() else None)
        for part in parts:
            part.add_done_callback(part_done)
        timer.start()
        if not parts:
            settle()
        return outer

    def submit_modes(self, response: str, gold: str | list[str], modes: Sequence[str] = MODES
                     ) -> dict[str, concurrent.futures.Future]:
        """Futures of one response's Grade in each of ``modes``, graded in one worker task: the task cost is
        paid once, and what the modes share (Math-Verify's parse of the gold) is computed once. Cancelling
        one of the futures cancels the task."""
        for mode in modes:
            check_mode(mode)
        by_host: dict[GradingHost | None, list[str]] = {}
        for mode in modes:
            by_host.setdefault(self.host(mode), []).append(mode)
        futures: dict[str, concurrent.futures.Future] = {}
        for host, own in by_host.items():
            if host is None:
                task = self.submit_jobs(_grade_jobs_in_worker, [(response, gold, mode) for mode in own])
            else:
                task = host.submit_modes(response, gold, own)
            futures.update({mode: mapped(task, operator.itemgetter(index)) for index, mode in enumerate(own)})
        return {mode: futures[mode] for mode in modes}

    def submit_jobs(self, func: Callable[..., list[Grade]], jobs: Sequence[Job],
                    deadline: float | None = None) -> concurrent.futures.Future:
        """Future of ``func(jobs, timeout[, deadline])`` (the Grades of ``(response, gold, mode)`` jobs) run in
        one worker task; if that task is killed or its worker dies, the jobs are graded again one task each
        (:meth:`submit_grade`), so every job keeps its own hard bound. Cancelling the future cancels those
        fall-back tasks too."""
        jobs = list(jobs)
        failed = object()
        args = (jobs, self.timeout) if deadline is None else (jobs, self.timeout, deadline)
        batch = self.submit(func, *args, items=len(jobs), deadline=deadline, on_timeout=lambda: failed,
                            on_crash=lambda: failed)

        def resolve(result: Any, outer: concurrent.futures.Future) -> None:
            if result is not failed:
                outer.set_result(result)
                return
            try:
                singles = [self.submit_grade(response, gold, mode, deadline) for response, gold, mode in jobs]
            except RuntimeError as exc:  # closed meanwhile
                outer.set_exception(exc)
                return
            outer.add_done_callback(lambda mine: [s.cancel() for s in singles] if mine.cancelled() else None)
            when_all_done(singles, outer)

        return chained(batch, resolve)

    def submit_vote(self, answers: list[str | None], deadline: float | None = None) -> concurrent.futures.Future:
        """Future of :func:`majority_vote`; past the timeout or the ``deadline`` (or if its worker dies) it
        falls back to exact-string majority."""
        answers = list(answers)
        host = self.host(None)
        if host is not None:
            return host.submit_vote(answers, deadline)
        return self.submit(majority_vote, answers, deadline=deadline, on_timeout=lambda: exact_majority(answers),
                           on_crash=lambda: exact_majority(answers))

    def close(self) -> None:
        """Stop the workers. Futures of items not finished yet end too: queued ones are cancelled, a running
        one raises BrokenProcessPool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            hosts = list(self._hosts.values())
            retiring = list(self._retiring)
        for host in hosts:
            host.close()
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
        for thread in retiring:
            thread.join()
        with self._lock:
            left = list(self._unfinished)
        for future in left:  # whatever the workers did not finish will never finish now
            future.cancel()

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def batch_size(items: int, workers: int) -> int:
    """Items per worker task: large enough to hide the per-task cost, small enough to keep workers balanced."""
    return max(1, min(MAX_BATCH, items // (workers * 8)))
