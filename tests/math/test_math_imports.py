"""luffy_math is a pure library: importing it and grading in-process starts no worker runtime."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import atexit, os, sys

registered = []
atexit.register = lambda func, *a, **k: registered.append(func) or func
forks = []
os.register_at_fork = lambda **hooks: forks.append(hooks)

import luffy_math
from luffy_math import answer_part, boxed_answer, grade, majority_vote

assert grade(r"\boxed{42}", "42").correct
assert grade("so 42", "42", mode="math_verify").correct
assert boxed_answer(answer_part(r"hm</think>\boxed{7}")) == "7"
assert majority_vote(["1", "2", "1"]) == "1"


def ours():
    hooks = registered + [func for hooks in forks for func in hooks.values()]
    return [func.__name__ for func in hooks if (getattr(func, "__module__", None) or "").startswith("luffy_math")]


print([name for name in ("pebble", "tqdm", "luffy_math.workers") if name in sys.modules], ours())
from luffy_math.workers import bulk  # importing the bulk API registers nothing either; its first use does

print(ours())
bulk._shared_pools()
print(ours())

"""


def test_importing_and_grading_loads_no_worker_runtime() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[] []", "[]", "['close_shared_pool', '_forget_shared_pool_in_child']"], \
        out.stdout


def test_the_workers_package_is_cheap_until_its_pool_is_used() -> None:
    """``luffy_math.workers`` gives the worker counts without loading pebble; the pool loads on first use."""
    script = ("import sys; from luffy_math.workers import default_workers, workers_beside_engine; "
              "assert 1 <= workers_beside_engine() <= min(4, default_workers()); "
              "assert 'pebble' not in sys.modules; "
              "from luffy_math.workers import GradingPool; assert 'pebble' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
