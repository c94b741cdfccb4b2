"""Nested deadlines: an inner one must not cancel the outer one (LUFFY's SIGALRM bug), and a timer armed by
someone else survives."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from luffy_math import deadline, grade
from luffy_math.deadline import DeadlineExceeded, call_with_deadline

SLOW_RESPONSE = "\\boxed{" + "1+" * 50_000 + "1}"  # Math-Verify needs far more than a second on this


def _spin(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def test_deadline_interrupts_python_code() -> None:
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.2, _spin, 5.0)
    assert time.monotonic() - start < 1.0


def test_inner_deadline_does_not_cancel_outer() -> None:
    def inner_then_spin() -> str:
        assert call_with_deadline(0.1, _spin, 0.01) == "done"  # inner finishes and is torn down...
        with pytest.raises(DeadlineExceeded):
            call_with_deadline(0.1, _spin, 1.0)  # ...another inner one fires...
        return _spin(5.0)  # ...and the outer one must still fire here

    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.5, inner_then_spin)
    assert 0.4 < time.monotonic() - start < 1.5


def test_outer_deadline_reaches_past_inner() -> None:
    """An outer deadline that expires inside an inner call unwinds to the outer caller, not the inner one."""
    inner_caught: list[bool] = []

    def outer_work() -> None:
        try:
            call_with_deadline(10.0, _spin, 5.0)
        except DeadlineExceeded:
            inner_caught.append(True)

    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.2, outer_work)
    assert inner_caught == []


def test_cpu_clock_counts_compute_not_waiting() -> None:
    """LUFFY's 1 s Math-Verify budget runs on CPU time, so a busy machine does not change labels."""
    assert call_with_deadline(0.2, lambda: time.sleep(0.6) or "slept", clock="cpu") == "slept"
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.2, _spin, 5.0, clock="cpu")


def test_clocks_nest_independently() -> None:
    def budgeted_step() -> str:
        with pytest.raises(DeadlineExceeded):
            call_with_deadline(0.1, _spin, 5.0, clock="cpu")
        return _spin(5.0)  # the wall deadline around it still fires

    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.6, budgeted_step)
    assert time.monotonic() - start < 3.0


def test_foreign_timer_is_restored() -> None:
    fired: list[int] = []
    outer_timer = signal.getitimer(signal.ITIMER_REAL)  # e.g. pytest-timeout's
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        assert call_with_deadline(5.0, _spin, 0.05) == "done"
        assert signal.getsignal(signal.SIGALRM) is not None and fired == []
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.1 < remaining <= 0.4
        time.sleep(0.6)
        assert fired == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *outer_timer)


def test_grade_times_out_in_process() -> None:
    start = time.monotonic()
    result = grade(SLOW_RESPONSE, "5", mode="math_verify", timeout=1.0)
    assert result.timed_out and not result.correct and result.decided_by == "timeout"
    assert time.monotonic() - start < 3.0
    assert grade(r"\boxed{5}", "5", mode="math_verify", timeout=1.0).correct  # nothing left armed


def test_grade_works_off_the_main_thread() -> None:
    """Math-Verify's own alarms would raise ValueError in a thread; ours are off there."""
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.extend(
        [grade(r"\boxed{\frac{1}{2}}", "0.5"), grade(r"\boxed{\frac{1}{2}}", "0.5", mode="math_verify")]))
    worker.start()
    worker.join(60)
    assert [r.correct for r in results] == [True, True]  # type: ignore[attr-defined]


class _SpinsWhenCollected:
    """An object whose __del__ runs long: a signal that lands there raises into nowhere (Python prints such an
    exception as unraisable and drops it), as happens to a deadline firing during garbage collection."""

    def __del__(self) -> None:
        _spin(0.5)


def _collect_then_spin() -> str:
    _SpinsWhenCollected()  # collected at once; the deadline (0.1 s) fires inside its __del__
    return _spin(5.0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_deadline_swallowed_in_a_destructor_fires_again() -> None:
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(0.1, _collect_then_spin)
    assert time.monotonic() - start < 2.0
    time.sleep(0.2)  # no retry is left armed: a stray SIGALRM now would reach the default handler or pytest's


def _nested_spin(inner: float, seconds: float) -> str:
    try:
        return call_with_deadline(inner, _spin, seconds)
    except DeadlineExceeded:
        return "inner"


def _busy(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "beside-a-busy-thread"])
def test_deadline_passing_as_its_call_returns_never_escapes(other_thread: bool) -> None:
    """A deadline that passes just as its call returns used to fire inside the clean-up: the signal's exception
    escaped the call, and the deadline stayed armed to strike unrelated code later (a 500 under a /v1/grade
    flood). Thousands of calls that end right at their deadline, alone and nested, must each either return or
    raise DeadlineExceeded, and leave no timer behind. With another thread running (a server, an engine), the
    kernel may hand the signal to that thread: the calls must neither hang nor let the signal reach the
    default action (which kills the process) once the timer is given back."""
    stop = threading.Event()
    busy = threading.Thread(target=_busy, args=(stop,), daemon=True)
    if other_thread:
        busy.start()
    handler, (remaining, _) = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    outcomes = {"returned": 0, "exceeded": 0}
    started = time.monotonic()
    try:
        for i in range(1500):
            jitter = (i % 7 - 3) * 3e-5
            try:
                if i % 2:
                    call_with_deadline(0.002, _spin, 0.002 + jitter)
                else:
                    call_with_deadline(0.003, _nested_spin, 0.002 + jitter, 0.0029 - jitter)
                outcomes["returned"] += 1
            except DeadlineExceeded:
                outcomes["exceeded"] += 1
        time.sleep(0.1)  # a stale deadline, or a late signal of ours, would fire now, outside any call
    finally:  # never leave the busy thread running: it would eat the CPU budgets of later tests
        stop.set()
        if other_thread:
            busy.join(timeout=5)
    assert time.monotonic() - started < 60  # about 4 s of deadlines; a lost signal used to stall it for good
    assert outcomes["returned"] and outcomes["exceeded"], outcomes  # the race was really run, both ways
    # Ours passes signals on to the handler found (pytest-timeout's, or the default), or that one is back.
    assert signal.getsignal(signal.SIGALRM) in (handler, deadline._timers["wall"].on_signal)
    assert deadline._timers["wall"].foreign_handler == handler or handler == deadline._timers["wall"].on_signal
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert left <= remaining and (left > 0) == (remaining > 0)  # someone else's timer restored, ours gone


def test_a_late_signal_of_ours_is_dropped_and_a_later_one_passed_on() -> None:
    """A signal another thread took just before our timer stopped reaches our handler after the deadline
    ended: it must not reach the handler found there. A signal of that handler's own, later, must."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    outer_timer = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        assert call_with_deadline(5.0, _spin, 0.01) == "done"
        signal.raise_signal(signal.SIGALRM)  # as a late one of ours would arrive
        assert fired == []
        time.sleep(deadline._STRAY_SECONDS + 0.1)
        signal.raise_signal(signal.SIGALRM)  # someone else's, long after
        assert fired == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *outer_timer)


def test_a_deadline_passing_in_what_the_bookkeeping_calls_is_put_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``signal`` module's wrappers convert their results with ``enum`` code. A deadline passing there, in
    ``_enter`` or ``_leave``, used to raise out of the bookkeeping (before ``call_with_deadline``'s ``try``):
    the exception escaped its owner and the deadline stayed on the stack, to strike pytest's own code later
    (an INTERNALERROR after the 1,500-call race above, under load: 2 in 32,000 such calls). Slowing that
    conversion down makes the timer fire there nearly every time; each call must raise DeadlineExceeded and
    leave the stack empty."""
    if not hasattr(signal, "_int_to_enum"):
        pytest.skip("this Python's signal module converts its results otherwise")
    to_enum = signal._int_to_enum

    def slow_to_enum(value: object, enum_klass: type) -> object:
        _spin(0.001)  # the 0.1 ms timer of an already-passed deadline fires in here
        return to_enum(value, enum_klass)

    wall = deadline._timers["wall"]
    outer_timer = signal.getitimer(signal.ITIMER_REAL)  # pytest-timeout's
    escaped = stale = 0
    monkeypatch.setattr(signal, "_int_to_enum", slow_to_enum)
    try:
        for i in range(40):
            try:
                if i % 2:
                    call_with_deadline(0.0, _spin, 0.05)
                else:
                    call_with_deadline(0.05, _nested_spin, 0.0, 0.05)
            except DeadlineExceeded:
                pass
            except deadline._Expired:
                escaped += 1
            if wall.stack:
                stale += 1
                wall.stack.clear()
    finally:
        monkeypatch.undo()
        if escaped or stale:  # stop a stale deadline's timer, or it strikes pytest itself
            wall.stack.clear()
            signal.setitimer(signal.ITIMER_REAL, *outer_timer)
    assert (escaped, stale) == (0, 0)
