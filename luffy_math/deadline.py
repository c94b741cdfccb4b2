"""Deadlines that nest, on wall-clock time or on this process's CPU time.

LUFFY's grader nests SIGALRM timeouts, and every inner one ends with ``alarm(0)``, which silently cancels
the outer one. Here each deadline is kept on a stack per clock and that clock's interval timer is always
armed for the nearest one, so leaving an inner deadline re-arms the outer one. A timer that was already armed
by someone else (pytest-timeout, a server) is restored, with its remaining time, when the outermost deadline
of its clock ends.

Once used, a clock's signal handler stays: with no deadline armed it passes each signal on to the handler it
found (callable, or the default action), except one that lands within ``_STRAY_SECONDS`` of the last deadline
ending that is not due for that handler's timer: a signal of ours already on its way, which another thread took
from the kernel just before the timer stopped. The handler is not handed back when the last deadline ends
because such a signal would then reach the old handler, which would act on it (pytest-timeout's reports a
timeout that never happened).

Two clocks: "wall" (ITIMER_REAL, SIGALRM) bounds how long an item may take; "cpu" (ITIMER_PROF, SIGPROF,
this process's CPU time) gives a step a compute budget that does not shrink when the machine is busy, so a
label that depends on a budget (LUFFY's 1 s for Math-Verify) does not change with the load.

Signals only reach the main thread, so off it (or where there are no interval timers) a deadline does nothing:
the hard bound is then the process kill in :mod:`luffy_math.workers.pool`. Neither can stop a single long C call (a
huge integer power); only the kill can.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Clock = Literal["wall", "cpu"]

_EARLIEST_REARM = 1e-4
# After raising, the signal comes again this often until the deadline's owner has caught the exception: one
# raised while the interpreter runs a __del__ or a weakref callback is printed and dropped, not propagated.
_RETRY_SECONDS = 0.05
# A signal that lands in this module's own bookkeeping (arming, leaving a deadline) is put off by this much: an
# exception raised there would escape its owner and leave a stale deadline on the stack.
_DEFER_SECONDS = 1e-3
# A signal this soon after the last deadline of its clock ended, and not due for the timer found there, is ours.
_STRAY_SECONDS = 0.5


class DeadlineExceeded(Exception):
    """Raised by :func:`call_with_deadline` when its own deadline passed."""


@dataclass(eq=False)
class _Deadline:
    at: float


class _Expired(BaseException):
    """In flight from the signal handler to the owning call; a BaseException so that library code's broad
    ``except Exception`` cannot swallow it."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__("deadline passed")
        self.deadline = deadline


@dataclass
class _Timer:
    """One clock's interval timer, its signal, and the deadlines armed on it."""

    which: int
    signum: int
    now: Callable[[], float]
    stack: list[_Deadline] = field(default_factory=list)
    foreign_handler: Any = None
    foreign_remaining: float = 0.0
    foreign_interval: float = 0.0
    foreign_due: float | None = None  # when the restored timer fires for its owner
    entered_at: float = 0.0
    left_at: float = -math.inf

    def arm(self) -> None:
        """Arm the timer for the nearest deadline on the stack (at least a tick from now)."""
        nearest = min(d.at for d in self.stack)
        signal.setitimer(self.which, max(nearest - self.now(), _EARLIEST_REARM))

    def on_signal(self, signum: int, frame: Any) -> None:
        if not self.stack:
            self.pass_on(signum, frame)
            return
        interrupted = _interrupted(frame)
        if interrupted == "bookkeeping":
            signal.setitimer(self.which, _DEFER_SECONDS)  # the bookkeeping re-arms the timer when it is done
            return
        if interrupted == "no owner":  # cannot happen: their calls are gone, and raising would hit a stranger
            self.stack.clear()
            return
        now = self.now()
        expired = [d for d in self.stack if d.at <= now + 1e-3]
        if not expired:  # woke early: wait for the nearest again
            self.arm()
            return
        signal.setitimer(self.which, _RETRY_SECONDS)  # in case this exception is swallowed (see _RETRY_SECONDS)
        raise _Expired(expired[0])  # the outermost expired deadline unwinds everything inside it


    def pass_on(self, signum: int, frame: Any) -> None:
        """No deadline of ours is armed: the signal is the found handler's, unless it is one of ours arriving late."""
        now = self.now()
        if self.foreign_due is not None and now >= self.foreign_due - 1e-3:
            self.foreign_due = None
        elif now - self.left_at < _STRAY_SECONDS:
            return
        handler = self.foreign_handler
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:  # what would have happened without us
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


def _interrupted(frame: Any) -> Literal["func", "bookkeeping", "no owner"]:
    """What the signal interrupted, judged by the nearest frame of this module up the chain: a deadline's
    ``func`` (that frame is a ``call_with_deadline`` running it), or this module's own bookkeeping, however deep
    (the ``signal`` module's wrappers it calls and the ``enum`` conversions those run, a dataclass ``__init__``,
    a comprehension, a finalizer the garbage collector runs meanwhile). The innermost frame alone would not
    tell: a signal landing in the ``enum`` code that converts ``pthread_sigmask``'s result in ``_enter`` would
    raise there, before the ``try``, and leave the deadline on the stack."""
    innermost = frame
    while frame is not None and frame.f_globals is not _GLOBALS:
        frame = frame.f_back
    if frame is None:
        return "no owner"
    return "func" if frame is not innermost and frame.f_code is call_with_deadline.__code__ else "bookkeeping"


_GLOBALS = globals()
_timers: dict[str, _Timer] = {}
if hasattr(signal, "setitimer"):
    _timers = {
        "wall": _Timer(signal.ITIMER_REAL, signal.SIGALRM, time.monotonic),
        "cpu": _Timer(signal.ITIMER_PROF, signal.SIGPROF, time.process_time),
    }


def signals_usable() -> bool:
    """True where a deadline can interrupt this thread."""
    return bool(_timers) and threading.current_thread() is threading.main_thread()


def call_with_deadline(seconds: float | None, func: Callable[..., T], *args: Any, clock: Clock = "wall") -> T:
    """Run ``func(*args)``; raise DeadlineExceeded if it is still running after ``seconds`` of ``clock``
    (main thread only; elsewhere it simply runs)."""
    if seconds is None or not signals_usable():
        return func(*args)
    timer = _timers[clock]
    me = _Deadline(timer.now() + max(seconds, 0.0))
    _enter(timer, me)
    outer_expired = False
    try:
        return func(*args)
    except _Expired as expired:
        if expired.deadline is not me:
            outer_expired = True  # already unwinding to its owner: do not fire it a second time
            raise
        raise DeadlineExceeded(f"gave up after {seconds:g} s ({clock})") from None
    finally:
        _leave(timer, me, outer_expired)


def _enter(timer: _Timer, me: _Deadline) -> None:
    """Put ``me`` on the clock's stack and arm the timer, the signal held meanwhile."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {timer.signum})
    try:
        if not timer.stack:
            current = signal.getsignal(timer.signum)
            if current != timer.on_signal:  # someone set their own since: theirs is the one to pass on to
                timer.foreign_handler = current
                signal.signal(timer.signum, timer.on_signal)
            timer.foreign_remaining, timer.foreign_interval = signal.getitimer(timer.which)
            timer.foreign_due = None
            timer.entered_at = timer.now()
        timer.stack.append(me)
        timer.arm()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {timer.signum})


def _leave(timer: _Timer, me: _Deadline, outer_expired: bool) -> None:
    """Take ``me`` off the stack, the signal held meanwhile; arm the timer for what is left, or give timer and
    signal back to whoever had them, dropping a signal sent for a deadline that is gone."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {timer.signum})
    try:
        signal.setitimer(timer.which, 0)
        if me in timer.stack:  # with any left above it: their calls ran inside this one and are over
            del timer.stack[timer.stack.index(me):]
        if timer.stack:
            # An outer deadline already unwinding gets its retry (see _RETRY_SECONDS), not a second raise now.
            if outer_expired:
                signal.setitimer(timer.which, _RETRY_SECONDS)
            else:
                timer.arm()
            return
        # Stop the timer again (a put-off signal may have re-armed it meanwhile) and drop a signal it already
        # sent to this thread. One another thread took may still reach our handler later: it stays installed
        # and drops it (see pass_on). (Never sigwait: the wait would never end once another thread took it.)
        signal.setitimer(timer.which, 0)
        signal.sigtimedwait({timer.signum}, 0)
        timer.left_at = timer.now()
        if timer.foreign_remaining > 0:
            left = max(timer.foreign_remaining - (timer.now() - timer.entered_at), _EARLIEST_REARM)
            timer.foreign_due = timer.now() + left
            signal.setitimer(timer.which, left, timer.foreign_interval)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {timer.signum})
