"""GradingPool deadlines: a batch settles by its deadline, and the work left is dropped, not spent."""

from __future__ import annotations

import time

from luffy_math.workers import GradingPool

TOWER = r"\boxed{2^{2^{2^{2^{2^{100}}}}}}"  # Math-Verify spends its whole 10 s bound on it


def test_batch_settles_by_its_deadline_and_frees_the_worker() -> None:
    with GradingPool(workers=1, timeout=10.0) as pool:
        assert pool.submit_grade(r"\boxed{1}", "1").result(timeout=60).correct  # the worker is up
        items = [(r"\boxed{5}", "5"), *((f"try {i}: {TOWER}", "5") for i in range(4))]
        start = time.monotonic()
        grades = pool.submit_batch(items, "math_verify", deadline=start + 3.0).result(timeout=60)
        assert time.monotonic() - start < 3.0 + 1.0
        assert grades[0].correct and not grades[0].timed_out
        assert all(g.timed_out and g.decided_by == "timeout" for g in grades[1:])
        start = time.monotonic()  # the towers' worker was stopped: the next item runs at once
        assert pool.submit_grade(r"\boxed{2}", "2").result(timeout=60).correct
        assert time.monotonic() - start < 1.0


def test_cancelling_a_deadline_future_kills_its_running_task() -> None:
    with GradingPool(workers=1, timeout=10.0) as pool:
        future = pool.submit_grade(TOWER, "5", "math_verify", deadline=time.monotonic() + 30)
        time.sleep(0.5)
        assert future.cancel()
        start = time.monotonic()
        assert pool.submit_grade(r"\boxed{2}", "2").result(timeout=60).correct
        assert time.monotonic() - start < 2.0


def test_vote_past_its_deadline_falls_back_to_exact_majority() -> None:
    with GradingPool(workers=1, timeout=10.0) as pool:
        start = time.monotonic()
        vote = pool.submit_vote([TOWER, TOWER, "3"], deadline=start + 0.5).result(timeout=60)
        assert vote == TOWER and time.monotonic() - start < 0.5 + 3.0
