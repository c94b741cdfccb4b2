"""A grading worker killed while idle: the pool starts afresh and grades on, here and in the exact host.

pebble 5 puts its whole pool in an error state when a worker dies while no task runs; before GradingPool
replaced such a pool, every later grade failed ("Unexpected error within the Pool") until a restart.
"""

from __future__ import annotations

import os
import signal
import time

import psutil

from luffy_math import grade
from luffy_math.workers import GradingPool

ITEMS = [(r"\boxed{42}", "42"), ("no box", "42"), (r"\boxed{\frac{1}{2}}", "0.5")]
# pebble looks at its workers every 0.1 s; this leaves it time to see the death on a loaded machine
NOTICE_SECONDS = 1.0


def _kill_and_wait(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                time.sleep(0.05)
                continue
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} still there 30 s after SIGKILL")


def test_each_idle_worker_death_gets_a_fresh_pool() -> None:
    expected = [grade(response, gold) for response, gold in ITEMS]
    with GradingPool(workers=1, timeout=5.0) as pool:
        for _ in range(2):  # a second breakage is recovered from too
            worker = pool.submit(os.getpid).result(timeout=60)
            _kill_and_wait(worker)
            time.sleep(NOTICE_SECONDS)
            assert pool.submit_batch(ITEMS).result(timeout=60) == expected
            assert pool.submit_grade(r"\boxed{3}", "3").result(timeout=60).correct
            assert pool.submit_vote(["1", r"\frac{2}{2}", "3"]).result(timeout=60) == "1"
            assert pool.submit(os.getpid).result(timeout=60) != worker


def test_work_sent_as_the_pool_breaks_is_settled_not_lost() -> None:
    """Tasks that went out before pebble saw the death are aborted with the pool: a batch is graded again
    item by item on the fresh pool (as after any worker death), a single item says its worker died."""
    expected = [grade(response, gold) for response, gold in ITEMS]
    with GradingPool(workers=1, timeout=5.0) as pool:
        worker = pool.submit(os.getpid).result(timeout=60)
        os.kill(worker, signal.SIGKILL)
        batches = [pool.submit_batch(ITEMS) for _ in range(3)]
        single = pool.submit_grade(r"\boxed{3}", "3")
        assert [batch.result(timeout=60) for batch in batches] == [expected] * 3
        graded = single.result(timeout=60)
        assert graded.correct or graded.decided_by == "worker_died"
        assert pool.submit_grade(r"\boxed{3}", "3").result(timeout=60).correct


def test_an_idle_worker_killed_in_the_exact_host_leaves_it_grading() -> None:
    """The host runs a GradingPool on .venv-exact: the same recovery there, without a new host."""
    with GradingPool(workers=1, timeout=10.0) as pool:
        assert pool.submit_grade(r"\boxed{1}", "1", "luffy_exact").result(timeout=120).correct
        host = pool.host("luffy_exact")
        assert host is not None and host.pid is not None
        started = host.pid
        forkserver = next(p for p in psutil.Process(started).children() if "forkserver" in " ".join(p.cmdline()))
        (worker,) = forkserver.children()
        _kill_and_wait(worker.pid)
        time.sleep(NOTICE_SECONDS)
        graded = pool.submit_batch(ITEMS, "luffy_exact").result(timeout=120)
        assert [g.correct for g in graded] == [True, False, True]
        assert host.pid == started
