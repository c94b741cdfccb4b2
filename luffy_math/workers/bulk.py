"""Bulk grading: :func:`grade_many` over a shared pool of workers that stays warm between calls, and
:func:`grade_one`, one item in any mode.

The shared pool is started by the first call and closed after ``SHARED_POOL_IDLE_SECONDS`` idle, at exit
and (forgotten) in a forked child; its atexit and at-fork hooks are registered then, on first use, not when
this module is imported.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import os
import threading
from collections.abc import Iterable

from luffy_math.grader import (
    BOXED_MODES,
    MEMO_MAX_CHARS,
    Grade,
    GradeMode,
    check_mode,
    grade,
    graded_in_process,
    grading_key,
)
from luffy_math.pins import same_interpreter
from luffy_math.workers import default_workers
from luffy_math.workers.pool import GradingPool, batch_size, distinct_items

# grade_many keeps its workers this long after a call, so that the next call finds them started and their
# caches warm (joblib's loky executor keeps workers for the same reason).
SHARED_POOL_IDLE_SECONDS = 120.0
# grade_one(timeout=None) for a mode graded in workers, whose kill needs some bound.
UNBOUNDED_SECONDS = 3600.0


class _SharedPool:
    """The GradingPool that grade_many calls share: started on first use, kept while calls keep coming, closed
    after ``SHARED_POOL_IDLE_SECONDS`` idle and at exit. A call asking for other workers, another timeout or
    another interpreter gets a new pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pool: GradingPool | None = None
        self._users = 0
        self._idle_timer: threading.Timer | None = None

    def acquire(self, workers: int, timeout: float, python: str | None = None) -> GradingPool:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            pool = self.pool
            python = None if python is None or same_interpreter(python) else python
            wanted = (workers, timeout, python)
            if pool is None or (self._users == 0 and (pool.workers, pool.timeout, pool.python) != wanted):
                if pool is not None:
                    pool.close()
                pool = self.pool = GradingPool(workers=workers, timeout=timeout, python=python)
            elif (pool.workers, pool.timeout, pool.python) != wanted:  # in use by another thread: one of its own
                return GradingPool(workers=workers, timeout=timeout, python=python)
            self._users += 1
            return pool

    def release(self, pool: GradingPool) -> None:
        with self._lock:
            if pool is not self.pool:
                pool.close()
                return
            self._users -= 1
            if self._users == 0:
                self._idle_timer = threading.Timer(SHARED_POOL_IDLE_SECONDS, self.close)
                self._idle_timer.daemon = True
                self._idle_timer.start()

    def close(self) -> None:
        with self._lock:
            pool, self.pool = self.pool, None
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        if pool is not None:
            pool.close()


_shared: _SharedPool | None = None
_shared_lock = threading.Lock()
_hooks_registered = False


def _shared_pools() -> _SharedPool:
    """The shared pool's keeper, created (and the exit and fork hooks registered) on first use."""
    global _shared, _hooks_registered
    with _shared_lock:
        if _shared is None:
            _shared = _SharedPool()
        if not _hooks_registered:
            atexit.register(close_shared_pool)
            os.register_at_fork(after_in_child=_forget_shared_pool_in_child)
            _hooks_registered = True
        return _shared


def _forget_shared_pool_in_child() -> None:
    """A forked child has none of the parent's pool threads: it starts a pool of its own when it needs one."""
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()  # another thread of the parent may have held it at the fork


def shared_pool() -> GradingPool | None:
    """The pool grade_many's calls share now (between calls: until its idle time ends), or None if there is
    none; calling this starts nothing."""
    keeper = _shared
    return None if keeper is None else keeper.pool


def close_shared_pool() -> None:
    """Stop grade_many's workers now instead of after their idle time."""
    keeper = _shared
    if keeper is not None:
        keeper.close()


class VerdictCache:
    """The Grades of the boxed-answer modes ("luffy", "luffy_exact") grade_many's workers sent back, by mode,
    interpreter and grading key (short answers only, as grade()'s own memo): a later call answers a known
    (boxed answer, gold) here instead of sending it to a worker, as a loop over grade() in one process would
    find it in that memo."""

    def __init__(self, size: int = 8192) -> None:
        self._lock = threading.Lock()
        self._grades: collections.OrderedDict[tuple, Grade] = collections.OrderedDict()
        self._size = size

    @staticmethod
    def key(response: str, gold: str | list[str], mode: str, python: str | None) -> tuple | None:
        if mode not in BOXED_MODES:
            return None
        answer, golds = grading_key(response, gold, mode)
        if len(answer or "") + sum(map(len, golds)) > MEMO_MAX_CHARS:
            return None
        return mode, python, answer, golds

    def get(self, key: tuple | None) -> Grade | None:
        if key is None:
            return None
        with self._lock:
            found = self._grades.get(key)
            if found is not None:
                self._grades.move_to_end(key)
            return found

    def put(self, key: tuple | None, graded: Grade) -> None:
        """Only finished verdicts: a timeout or a dead worker may go otherwise next time."""
        if key is None or graded.timed_out or graded.decided_by == "worker_died":
            return
        with self._lock:
            self._grades[key] = graded
            self._grades.move_to_end(key)
            while len(self._grades) > self._size:
                self._grades.popitem(last=False)


verdict_cache = VerdictCache()


def grade_many(items: Iterable[tuple[str, str | list[str]]], mode: str = "luffy", workers: int | None = None,
               timeout: float = 10.0, progress: bool = True, python: str | None = None) -> list[Grade]:
    """Grade (response, gold) pairs in parallel worker processes, in input order, with a progress bar.

    ``python``: grade in workers on that interpreter (see :class:`~luffy_math.workers.pool.GradingPool`).

    Each distinct grading key is graded once (see :func:`~luffy_math.workers.pool.distinct_items`), and
    "luffy" verdicts from earlier calls are reused; batches go out grouped by gold, so that a worker's caches
    serve the answers to one problem together. The workers stay up for ``SHARED_POOL_IDLE_SECONDS`` after
    the call, warm for the next one (:func:`close_shared_pool` stops them).
    """
    from tqdm import tqdm

    check_mode(mode)
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    items = list(items)
    if not items:
        return []
    unique, where = distinct_items(items, mode)
    shares = [0] * len(unique)
    for position in where:
        shares[position] += 1
    python = None if python is None or same_interpreter(python) else python
    keys = [verdict_cache.key(response, gold, mode, python) for response, gold in unique]
    graded: list[Grade | None] = [verdict_cache.get(key) for key in keys]
    order = sorted((p for p in range(len(unique)) if graded[p] is None), key=lambda p: str(unique[p][1]))
    keeper = _shared_pools()
    pool = keeper.acquire(workers or default_workers(), timeout, python)
    try:
        size = batch_size(len(order), pool.workers)
        batches = {pool.submit_batch([unique[p] for p in order[start : start + size]], mode):
                   order[start : start + size] for start in range(0, len(order), size)}
        try:
            with tqdm(total=len(items), desc=f"grading ({mode})", unit="item", disable=not progress) as bar:
                bar.update(len(items) - sum(shares[p] for p in order))  # known from earlier calls
                for done in concurrent.futures.as_completed(batches):
                    positions = batches[done]
                    for position, result in zip(positions, done.result(), strict=True):
                        graded[position] = result
                        verdict_cache.put(keys[position], result)
                    bar.update(sum(shares[position] for position in positions))
        finally:  # interrupted (Ctrl-C): leave no queued work behind in the shared workers
            for batch in batches:
                batch.cancel()
    finally:
        keeper.release(pool)
    return [graded[position] for position in where]  # type: ignore[misc]


def grade_one(response: str, gold: str | list[str], mode: GradeMode = "luffy", timeout: float | None = 10.0) -> Grade:
    """One response's Grade in any mode: :func:`luffy_math.grade` in this process where it grades ``mode``, else
    (``luffy_exact`` outside LUFFY's pins) :func:`grade_many` on the workers of the environment with the pins."""
    if graded_in_process(mode):
        return grade(response, gold, mode=mode, timeout=timeout)
    return grade_many([(response, gold)], mode=mode, timeout=timeout or UNBOUNDED_SECONDS, progress=False)[0]
