"""LUFFY's training reward (its "v3"), on top of luffy_math.

The response must close its reasoning: ``THINK_OPEN`` (``<think>\\n``) is prepended (the chat template opens
the think block in the prompt), the reward is 0 unless ``</think>`` follows, else Math-Verify decides whether
the text after the first ``</think>`` (:func:`luffy_math.thinking.answer_part`) equals ``"$" + gold + "$"``.
Grading itself lives in luffy_math.

Which Math-Verify decides is a choice (``luffy.reward_grader``), because verl's environment cannot give the
label itself: its ANTLR 4.9.3 (hydra's pin) leaves this package's LaTeX parser stale, and percents then fail.
The reward is graded in workers on another environment's interpreter:

- ``exact`` (the default): LUFFY's pinned environment (``.venv-exact``, math-verify 0.6.0), the labels
  LUFFY's own training run gave;
- ``serving``: the serving environment (``.venv``, math-verify 0.9.0), the label the harness records as
  ``math_verify``;
- ``here``: this process, as it is.

Light to import (verl's Ray workers load this module through the plugin): the worker pools, and with them
pebble and their exit hook, come only with the first reward graded in another environment.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from luffy_math import grade
from luffy_math.pins import require_exact_python, under_luffy_pins
from luffy_math.thinking import THINK_END, THINK_OPEN, answer_part

if TYPE_CHECKING:
    from luffy_math.workers import GradingPool


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
    """One pool per interpreter for the life of the process: verl asks for rewards step after step. The
    first one registers the exit hook that closes them."""
    from luffy_math.workers import GradingPool

    with _pools_lock:
        if not _pools:
            atexit.unregister(_close_pools)  # once, however often the pools come and go
            atexit.register(_close_pools)
        pool = _pools.get(python)
        if pool is None or pool.timeout != timeout:
            if pool is not None:
                pool.close()
            pool = _pools[python] = GradingPool(workers=REWARD_WORKERS, timeout=timeout, python=python)
        return pool


def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _closed_answer(response: str) -> str | None:
    """The text graded of a response whose prompt opened the think block, or None when it never closed it."""
    if THINK_END not in response:
        return None
    return answer_part(THINK_OPEN + response)


def luffy_reward(response: str, gold: str | list[str], timeout: float = 10.0,
                 grader: str = DEFAULT_REWARD_GRADER) -> float:
    """1.0 if the reasoning is closed and the final answer matches ``gold``, else 0.0."""
    return score([response], [gold], grader=grader, timeout=timeout)[0]


def score(responses: Sequence[str], golds: Sequence[str | list[str]], grader: str = DEFAULT_REWARD_GRADER,
          timeout: float = 10.0) -> list[float]:
    """:func:`luffy_reward` of each (response, gold) pair, in order; in another environment's workers the
    items are graded side by side."""
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    python = grader_python(grader)
    answers = [_closed_answer(response) for response in responses]
    # luffy_math's math_verify mode parses the gold as inline math ("$" + gold + "$"), as LUFFY's v3 does.
    if python is None:
        return [0.0 if answer is None else float(grade(answer, gold, mode="math_verify", timeout=timeout).correct)
                for answer, gold in zip(answers, golds, strict=True)]
    pool = _pool(python, timeout)
    futures = [None if answer is None else pool.submit_grade(answer, gold, "math_verify")
               for answer, gold in zip(answers, golds, strict=True)]
    return [0.0 if future is None else float(future.result().correct) for future in futures]


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  grader: str = DEFAULT_REWARD_GRADER, **kwargs: Any) -> float:
    """verl's custom reward function signature (``reward.custom_reward_function``; ``grader`` comes from its
    ``reward_kwargs``, set from ``luffy.reward_grader``)."""
    return luffy_reward(solution_str, ground_truth, grader=grader)
