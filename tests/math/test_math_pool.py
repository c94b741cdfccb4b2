"""Worker-process grading: results in order, hard per-item bounds, and a pool that survives bad items."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time

import pytest
from pebble import ProcessExpired

from luffy_math import Grade, grade
from luffy_math.workers import GradingPool, close_shared_pool, distinct_items, grade_many, shared_pool
from luffy_math.workers.bulk import verdict_cache
from luffy_math.workers.pool import KILL_GRACE_SECONDS, WORKER_MEMORY_BYTES

ADVERSARIAL = {
    "deep nesting": "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "deep parentheses": "\\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}",
    "100k characters": "\\boxed{" + "1+" * 50_000 + "1}",
    "100k plain text": "x^2 + " * 17_000,
    "tower of powers": r"$\boxed{10^{10^{10^{10}}}}$",
    "huge power": r"$\boxed{7^{123456789}}$",
    "unbalanced open": r"\boxed{{{{{\frac{1}{2}",
    "unbalanced close": r"\boxed{1}}}}}\frac{{",
}


def _block_alarms_and_spin(seconds: float) -> str:
    """Stand-in for a long C call: no signal can interrupt it, so only the kill ends it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "finished"


def _block_alarms_and_spin_batch(jobs: list[tuple[str, str, str]], timeout: float) -> list[Grade]:
    _block_alarms_and_spin(60.0)
    return []


def _die() -> None:
    """Stand-in for a worker lost under an item (killed for memory, a crash in C)."""
    os._exit(3)


def _allocate(gigabytes: int) -> int:
    return len(bytearray(gigabytes << 30))


def test_grade_many_matches_grade_in_order(grading_pool: GradingPool) -> None:
    items = [(r"\boxed{42}", "42"), ("no box", "42"), (r"\boxed{\frac{1}{2}}", "0.5"), (r"\boxed{7}", ["6", "7"])]
    assert grade_many(items, workers=2, progress=False) == [grade(response, gold) for response, gold in items]
    futures = [grading_pool.submit_grade(response, gold, "math_verify") for response, gold in items]
    assert [f.result(timeout=60) for f in futures] == [grade(r, g, mode="math_verify") for r, g in items]
    assert grade_many([], progress=False) == []


REPEATS = [
    ("Work. So $\\boxed{42}$.", "42"),
    ("Other work, same box: \\boxed{42}", "42"),
    ("\\boxed{41} wait, no: \\boxed{42}", "42"),
    ("no box at all", "42"),
    ("also no box, 42", "42"),
    ("\\fbox{42}", "42"),
    ("Work. So $\\boxed{42}$.", "42"),
    ("Work. So $\\boxed{42}$.", ["41", "42"]),
    ("\\boxed{7}", "7"),
]


def test_distinct_items_key_on_what_the_mode_reads() -> None:
    # "luffy" reads only the last box (an \fbox is no box to it); "math_verify" reads the whole response.
    unique, where = distinct_items(REPEATS, "luffy")
    assert where == [0, 0, 0, 1, 1, 1, 0, 2, 3]
    assert unique == [REPEATS[0], REPEATS[3], REPEATS[7], REPEATS[8]]
    unique, where = distinct_items(REPEATS, "math_verify")
    assert where == [0, 1, 2, 3, 4, 5, 0, 6, 7]
    assert len(unique) == 8


@pytest.mark.parametrize("mode", ["luffy", "math_verify"])
def test_repeated_items_are_graded_once_with_each_grade_in_place(grading_pool: GradingPool, mode: str) -> None:
    expected = [grade(response, gold, mode=mode) for response, gold in REPEATS]
    assert grade_many(REPEATS, mode=mode, workers=2, progress=False) == expected
    assert grading_pool.submit_batch(REPEATS, mode).result(timeout=60) == expected
    # math_verify reads the whole text: two items of one luffy key ("no box") get different labels there
    if mode == "math_verify":
        assert expected[4].correct and not expected[3].correct


def test_submit_modes_grades_one_response_in_each_mode(grading_pool: GradingPool) -> None:
    response = "So the answer is 42."  # no box: wrong for luffy, right for math_verify
    futures = grading_pool.submit_modes(response, "42", ["luffy", "math_verify"])
    grades = {mode: future.result(timeout=60) for mode, future in futures.items()}
    assert grades == {mode: grade(response, "42", mode=mode) for mode in ("luffy", "math_verify")}
    assert not grades["luffy"].correct and grades["math_verify"].correct
    with pytest.raises(ValueError, match="unknown grading mode"):
        grading_pool.submit_modes(response, "42", ["luffy", "nope"])


def test_grade_many_keeps_its_workers_warm_between_calls() -> None:
    items = [(r"\boxed{42}", "42"), (r"\boxed{41}", "42")]
    close_shared_pool()
    assert shared_pool() is None
    first = grade_many(items, workers=2, progress=False)
    pool = shared_pool()
    assert pool is not None and first[0].correct and not first[1].correct
    assert grade_many(items, workers=2, progress=False) == first
    assert shared_pool() is pool  # the same workers served the second call
    grade_many(items, workers=2, timeout=5.0, progress=False)
    assert shared_pool() is not pool  # another timeout: a pool of its own, and the old one closed
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit_grade(r"\boxed{1}", "1")
    close_shared_pool()
    assert shared_pool() is None


def test_grade_many_reuses_finished_luffy_verdicts_only() -> None:
    verdicts = verdict_cache  # the parent-side cache of grade_many (kept: the grading benchmark shows it pays, docs/luffy_math.md)
    fresh = (r"So \boxed{6\sqrt{7}}", r"\sqrt{252}")
    first = grade_many([fresh], progress=False)[0]
    assert first.correct and verdicts.get(verdicts.key(*fresh, "luffy", None)) == first
    # a remembered verdict is answered in this process: plant one and see it come back for the same key
    planted = Grade(correct=False, extracted=r"6\sqrt{7}", decided_by="planted", formatted=True)
    verdicts.put(verdicts.key(*fresh, "luffy", None), planted)
    assert grade_many([("other words, " + fresh[0], fresh[1])], progress=False) == [planted]
    assert grade_many([fresh], mode="math_verify", progress=False)[0].correct  # only "luffy" is remembered
    assert grade_many([fresh], mode="luffy_exact", progress=False)[0].correct  # remembered apart, per mode
    slow = (r"\boxed{\frac{1}{\sqrt{2}} + \frac{1}{\sqrt{3}}}", r"\frac{\sqrt{2}}{2} + \frac{\sqrt{3}}{3}")
    timed_out = grade_many([slow], timeout=1e-3, progress=False)[0]
    assert timed_out.timed_out and verdicts.get(verdicts.key(*slow, "luffy", None)) is None


def test_nice_workers_run_at_lower_priority() -> None:
    base = os.nice(0)
    with GradingPool(workers=1, nice=5) as pool:
        assert pool.submit(os.nice, 0).result(timeout=60) == min(base + 5, 19)
    with pytest.raises(ValueError, match="nice must be between 0 and 19"):
        GradingPool(workers=1, nice=20)


def test_grade_many_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown grading mode"):
        grade_many([(r"\boxed{1}", "1")], mode="nope", progress=False)


@pytest.mark.parametrize("mode", ["luffy", "math_verify"])
def test_adversarial_answers_return_in_time(grading_pool: GradingPool, mode: str) -> None:
    bound = grading_pool.timeout + KILL_GRACE_SECONDS + 30  # generous: the machine is shared
    futures = {name: grading_pool.submit_grade(text, "5", mode) for name, text in ADVERSARIAL.items()}
    for name, future in futures.items():
        result = future.result(timeout=bound)
        assert isinstance(result, Grade) and not result.correct, name
        if result.timed_out:
            assert result.decided_by == "timeout", name
    assert grading_pool.submit_grade(r"\boxed{5}", "5", mode).result(timeout=60).correct  # still working


def test_unresponsive_worker_is_killed_and_replaced() -> None:
    with GradingPool(workers=1, timeout=1.0) as pool:
        start = time.monotonic()
        stuck = pool.submit(_block_alarms_and_spin, 60.0, on_timeout=lambda: "killed", on_crash=lambda: "died")
        assert stuck.result(timeout=30) == "killed"
        assert time.monotonic() - start < 1.0 + KILL_GRACE_SECONDS + 10
        after = pool.submit_grade(r"\boxed{\frac{1}{2}}", "0.5").result(timeout=60)
        assert after.correct and not after.timed_out


def test_batches_match_grade_and_survive_a_kill() -> None:
    items = [(r"\boxed{42}", "42"), ("no box", "42"), (r"\boxed{\frac{1}{2}}", "0.5")]
    expected = [grade(response, gold) for response, gold in items]
    with GradingPool(workers=1, timeout=1.0) as pool:
        assert pool.submit_batch(items).result(timeout=60) == expected
        # A batch whose worker must be killed is graded again one item per task.
        start = time.monotonic()
        jobs = [(*item, "luffy") for item in items]
        assert pool.submit_jobs(_block_alarms_and_spin_batch, jobs).result(timeout=90) == expected
        assert time.monotonic() - start >= len(items) * 1.0 + KILL_GRACE_SECONDS


def test_dead_worker_is_replaced_and_memory_is_capped() -> None:
    with GradingPool(workers=1, timeout=5.0) as pool:
        assert pool.submit(_die, on_timeout=lambda: "killed", on_crash=lambda: "died").result(timeout=60) == "died"
        with pytest.raises(ProcessExpired):  # without on_crash the future says how the worker ended
            pool.submit(_die).result(timeout=60)
        with pytest.raises(MemoryError):
            pool.submit(_allocate, WORKER_MEMORY_BYTES >> 30).result(timeout=60)
        assert pool.submit_grade(r"\boxed{3}", "3").result(timeout=60).correct


def test_close_ends_unfinished_items() -> None:
    """Nothing waits forever on a closed pool: queued items are cancelled, a running one fails."""
    pool = GradingPool(workers=1, timeout=30.0)
    futures = [pool.submit(time.sleep, 20.0) for _ in range(3)]
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 15
    assert all(future.done() for future in futures)
    assert all(future.cancelled() or future.exception() is not None for future in futures)
    assert sum(future.cancelled() for future in futures) >= 2


def test_cancelled_waiting_item_is_dropped(grading_pool: GradingPool) -> None:
    busy = [grading_pool.submit(time.sleep, 1.0) for _ in range(2)]
    waiting = grading_pool.submit_grade(r"\boxed{1}", "1")
    assert waiting.cancel()
    assert [future.result(timeout=60) for future in busy] == [None, None]
    assert grading_pool.submit_grade(r"\boxed{1}", "1").result(timeout=60).correct


def test_timed_out_item_is_labelled(grading_pool: GradingPool) -> None:
    result = grading_pool.submit_grade(ADVERSARIAL["100k characters"], "5", "math_verify").result(timeout=60)
    assert result == Grade(correct=False, extracted="1+" * 50_000 + "1", decided_by="timeout", formatted=True,
                           timed_out=True)


def test_futures_work_with_asyncio(grading_pool: GradingPool) -> None:
    async def main() -> list[object]:
        return await asyncio.gather(
            asyncio.wrap_future(grading_pool.submit_grade(r"\boxed{2}", "2")),
            asyncio.wrap_future(grading_pool.submit_vote(["1", r"\frac{2}{2}", "3", None])),
        )

    future = grading_pool.submit_grade(r"\boxed{2}", "2")
    assert isinstance(future, concurrent.futures.Future)
    graded, voted = asyncio.run(main())
    assert graded.correct and voted == "1"  # type: ignore[attr-defined]


def test_unknown_mode_and_closed_pool_are_clear_errors() -> None:
    pool = GradingPool(workers=1, timeout=1.0)
    with pytest.raises(ValueError, match="unknown grading mode"):
        pool.submit_grade(r"\boxed{1}", "1", mode="nope")
    pool.close()
    pool.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit_grade(r"\boxed{1}", "1")
    with pytest.raises(ValueError, match="timeout must be positive"):
        GradingPool(workers=1, timeout=0)
