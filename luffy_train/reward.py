"""LUFFY's training reward (its "v3"), on top of luffy_math.

The response must close its reasoning: ``"<think>\\n"`` is prepended (the chat template opens the think
block in the prompt), the reward is 0 unless ``</think>`` follows, else Math-Verify decides whether the
text after the first ``</think>`` equals ``"$" + gold + "$"``. Grading itself lives in luffy_math.

Which Math-Verify decides is a choice (``luffy.reward_grader``), because verl's environment cannot give the
label itself: its ANTLR 4.9.3 (hydra's pin) leaves this package's LaTeX parser stale, and percents then fail.
The reward is graded in workers on another environment's interpreter:

- ``exact`` (the default): LUFFY's pinned environment (``.venv-exact``, math-verify 0.6.0), the labels
  LUFFY's own training run gave;
- ``serving``: the serving environment (``.venv``, math-verify 0.9.0), the label the harness records as
  ``math_verify``;
- ``here``: this process, as it is.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any

from luffy_math import GradingPool, grade, split_reasoning
from luffy_math.pins import require_exact_python, under_luffy_pins

THINK_OPEN = "<think>\n"
REWARD_GRADERS = ("exact", "serving", "here")
DEFAULT_REWARD_GRADER = "exact"
SERVING_PYTHON_ENV = "LUFFY_SERVING_PYTHON"
# Workers per reward process: verl scores the items of a batch a few at a time in each reward worker.
REWARD_WORKERS = 2


class RewardGraderMissing(RuntimeError):
    """The environment the reward grader needs is not there."""


def serving_python() -> str:
    """The serving environment's interpreter: ``LUFFY_SERVING_PYTHON``, or ``.venv`` beside the source tree."""
    python = os.environ.get(SERVING_PYTHON_ENV) or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python")
    if not os.access(python, os.X_OK):
        raise RewardGraderMissing(
            f"reward grader 'serving' needs the serving environment's python ({python} not found); build it with "
            f"`bash scripts/setup.sh serve` or point {SERVING_PYTHON_ENV} at it")
    return python


def grader_python(grader: str) -> str | None:
    """The interpreter whose workers grade the reward, or None for this process."""
    if grader not in REWARD_GRADERS:
        raise ValueError(f"luffy.reward_grader must be one of {', '.join(REWARD_GRADERS)}, got {grader!r}")
    if grader == "serving":
        return serving_python()
    if grader == "exact" and not under_luffy_pins():
        try:
            return require_exact_python()
        except RuntimeError as err:
            raise RewardGraderMissing(f"reward grader 'exact': {err} (or set luffy.reward_grader=serving)") from None
    return None


_pools: dict[str, GradingPool] = {}
_pools_lock = threading.Lock()


def _pool(python: str, timeout: float) -> GradingPool:
    """One pool per interpreter for the life of the process: verl asks for rewards step after step."""
    with _pools_lock:
        pool = _pools.get(python)
        if pool is None or pool.timeout != timeout:
            if pool is not None:
                pool.close()
            pool = _pools[python] = GradingPool(workers=REWARD_WORKERS, timeout=timeout, python=python)
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def luffy_reward(response: str, gold: str | list[str], timeout: float = 10.0,
                 grader: str = DEFAULT_REWARD_GRADER) -> float:
    """1.0 if the reasoning is closed and the final answer matches ``gold``, else 0.0."""
    python = grader_python(grader)
    reasoning, answer = split_reasoning(THINK_OPEN + response)
    if reasoning is None:
        return 0.0
    # luffy_math's math_verify mode parses the gold as inline math ("$" + gold + "$"), as LUFFY's v3 does.
    if python is None:
        graded = grade(answer, gold, mode="math_verify", timeout=timeout)
    else:
        graded = _pool(python, timeout).submit_grade(answer, gold, "math_verify").result()
    return 1.0 if graded.correct else 0.0


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  grader: str = DEFAULT_REWARD_GRADER, **kwargs: Any) -> float:
    """verl's custom reward function signature (``reward.custom_reward_function``; ``grader`` comes from its
    ``reward_kwargs``, set from ``luffy.reward_grader``)."""
    return luffy_reward(solution_str, ground_truth, grader=grader)
