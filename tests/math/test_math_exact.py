"""The "luffy_exact" mode: LUFFY's grader under LUFFY's library pins, in workers on .venv-exact's interpreter.

The answers below are ones the pins label otherwise than this environment's Math-Verify 0.9.0 (found on the
parity suite): 0.6.0 refuses ``0,006`` for 0.006 and a swapped equation, and accepts ``2f(x)=2x`` for
``f(x)=2x`` (it keeps the right side of an assignment). Getting those labels proves the grading ran under the
pins; the host process itself is exercised as a failure would find it (killed, missing, silent).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from luffy_math import MODES, available_modes, grade
from luffy_math.pins import (
    EXACT_PYTHON_ENV,
    ExactEnvironmentMissing,
    exact_python,
    luffy_pins,
    under_luffy_pins,
)
from luffy_math.workers import GradingPool, grade_many, grade_one
from luffy_math.workers.host_client import GradingHostError

# (response, gold, label under LUFFY's pins, label under this environment's libraries)
VERSION_CASES = [
    (r"So the answer is $\boxed{0,006}$.", "0.006", False, True),
    (r"\boxed{5 = x}", "x=5", False, True),
    (r"\boxed{2f(x)=2x}", "f(x)=2x", True, False),
]
TOWER = r"\boxed{2^{2^{2^{2^{2^{100}}}}}}"


def test_the_exact_environment_is_built_with_luffys_pins() -> None:
    assert "luffy_exact" in MODES and "luffy_exact" in available_modes()
    assert not under_luffy_pins()  # this test runs in the serving environment, with math-verify 0.9.0
    python = exact_python()
    assert python is not None
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout.lower()
    for name, version in luffy_pins().items():
        assert f"{name.lower().replace('_', '-')}=={version}" in listed.replace("_", "-")


@pytest.mark.parametrize(("response", "gold", "pinned", "here"), VERSION_CASES)
def test_luffy_exact_gives_the_pinned_libraries_label(response: str, gold: str, pinned: bool, here: bool,
                                                      grading_pool: GradingPool) -> None:
    assert grade(response, gold, mode="luffy").correct is here
    assert grade_one(response, gold, mode="luffy").correct is here  # in this process
    assert grade_one(response, gold, mode="luffy_exact").correct is pinned  # in the workers on the pins
    assert grading_pool.submit_grade(response, gold, "luffy_exact").result(timeout=120).correct is pinned
    modes = grading_pool.submit_modes(response, gold, ("luffy", "luffy_exact", "math_verify"))
    assert modes["luffy"].result(timeout=120).correct is here
    assert modes["luffy_exact"].result(timeout=120).correct is pinned


def test_grade_refuses_the_exact_mode_outside_the_pins_and_grades_it_inside() -> None:
    """luffy_math.grade starts no process: outside the pinned environment it names the worker API instead."""
    with pytest.raises(ValueError, match="luffy_math.workers"):
        grade(r"\boxed{1}", "1", mode="luffy_exact")
    script = ("from luffy_math import grade; "
              "print([grade(r, g, mode='luffy_exact').correct for r, g in %r])" % [(r, g) for r, g, _, _ in VERSION_CASES])
    out = subprocess.run([exact_python(), "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str([pinned for _, _, pinned, _ in VERSION_CASES]), out.stderr


def test_grade_many_and_batches_in_the_exact_mode(grading_pool: GradingPool) -> None:
    items = [(response, gold) for response, gold, _, _ in VERSION_CASES] * 20
    expected = [pinned for _, _, pinned, _ in VERSION_CASES] * 20
    assert [g.correct for g in grade_many(items, mode="luffy_exact", progress=False)] == expected
    batch = grading_pool.submit_batch(items, "luffy_exact", deadline=time.monotonic() + 60).result(timeout=120)
    assert [g.correct for g in batch] == expected
    assert grading_pool.submit_vote(["0.5", r"\frac{1}{2}", "3"]).result(timeout=60) == "0.5"


def test_the_host_reports_its_libraries() -> None:
    with GradingPool(workers=1) as pool:
        host = pool.host("luffy_exact")
        assert host is not None and pool.host("luffy") is None  # "luffy" is graded by this process's workers
        hello = host.hello()
        assert hello["under_luffy_pins"] is True
        assert hello["versions"] == luffy_pins()


def test_a_pool_on_another_interpreter_grades_every_mode_there() -> None:
    """``python=``: plain Math-Verify under 0.6.0 as well (what the trainer's "exact" reward uses)."""
    with GradingPool(workers=1, python=exact_python()) as pool:
        assert pool.submit_grade(r"\boxed{0,006}", "0.006", "math_verify").result(timeout=120).correct is False
    assert grade(r"\boxed{0,006}", "0.006", mode="math_verify").correct is True


def _host_pid(pool: GradingPool) -> int | None:
    return pool.host("math_verify").pid


# The tower is slow in "math_verify" mode (it takes Math-Verify's whole bound), so these tests grade that mode
# on the exact environment's interpreter, through the same host.


def test_a_killed_host_fails_its_items_and_is_started_again() -> None:
    with GradingPool(workers=1, timeout=10.0, python=exact_python()) as pool:
        assert pool.submit_grade(r"\boxed{1}", "1", "math_verify").result(timeout=120).correct
        slow = pool.submit_grade(TOWER, "5", "math_verify")
        time.sleep(1.0)
        first = _host_pid(pool)
        os.kill(first, signal.SIGKILL)
        died = slow.result(timeout=30)
        assert died.decided_by == "worker_died" and not died.correct
        assert pool.submit_grade(r"\boxed{0,006}", "0.006", "math_verify").result(timeout=120).correct is False
        assert _host_pid(pool) != first


def test_deadline_and_cancel_reach_the_host() -> None:
    with GradingPool(workers=1, timeout=10.0, python=exact_python()) as pool:
        assert pool.submit_grade(r"\boxed{1}", "1", "math_verify").result(timeout=120).correct
        start = time.monotonic()
        grades = pool.submit_batch([(r"\boxed{5}", "5"), (TOWER, "5")], "math_verify",
                                   deadline=start + 2.0).result(timeout=60)
        assert time.monotonic() - start < 2.0 + 1.5
        assert grades[0].correct and grades[1].timed_out
        future = pool.submit_grade(TOWER, "5", "math_verify", deadline=time.monotonic() + 30)
        time.sleep(1.0)
        assert future.cancel()
        start = time.monotonic()  # the host killed the cancelled item's worker: the next item runs at once
        assert pool.submit_grade(r"\boxed{2}", "2", "math_verify").result(timeout=60).correct
        assert time.monotonic() - start < 2.5


def test_without_the_environment_the_mode_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv(EXACT_PYTHON_ENV, str(tmp_path / "missing" / "python"))
    assert "luffy_exact" not in available_modes()
    with GradingPool(workers=1) as pool, pytest.raises(ExactEnvironmentMissing, match="setup.sh exact"):
        pool.submit_grade(r"\boxed{1}", "1", "luffy_exact")
        assert pool.submit_grade(r"\boxed{1}", "1", "luffy").result(timeout=60).correct  # the rest still works


def test_a_host_that_cannot_start_fails_its_requests_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXACT_PYTHON_ENV, "/bin/false")  # exits at once, never says it is ready
    with GradingPool(workers=1) as pool:
        start = time.monotonic()
        futures = [pool.submit_grade(r"\boxed{1}", "1", "luffy_exact") for _ in range(5)]
        for future in futures:
            with pytest.raises(GradingHostError, match="did not start"):
                future.result(timeout=30)
        assert time.monotonic() - start < 10


def test_math_verify_060_alarms_do_not_cancel_luffy_maths_deadlines() -> None:
    """Math-Verify 0.6.0 ends each call with ``alarm(0)``; under the pins its alarms are switched off, so an
    outer wall-clock deadline still fires after a Math-Verify call."""
    script = """
import time
from luffy_math import grade
from luffy_math.deadline import DeadlineExceeded, call_with_deadline

def work():
    assert grade(r"\\boxed{50\\%}", "0.5", mode="math_verify", timeout=None).correct
    time.sleep(3)

start = time.monotonic()
try:
    call_with_deadline(1.0, work)
except DeadlineExceeded:
    print("fired", round(time.monotonic() - start, 1))
"""
    out = subprocess.run([exact_python(), "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("fired"), out.stdout + out.stderr
    assert float(out.stdout.split()[1]) < 2.0



def test_the_host_runs_under_the_exact_environment_alone() -> None:
    """.venv-exact has luffy_math, pebble, tqdm and LUFFY's math libraries only: the host's module imports
    there, and it starts as its owner starts it (``python -m luffy_math.workers.host``)."""
    python = exact_python()
    assert python is not None
    out = subprocess.run([python, "-c", "import luffy_math.workers.host"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([python, "-m", "luffy_math.workers.host", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--workers" in out.stdout, out.stderr
