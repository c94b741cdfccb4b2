"""luffy_math: the one place for the think/answer rule, answer extraction, grading and majority vote.

Used by the server (``answer``/``majority_answer`` fields, ``POST /v1/grade``), the benchmark harness and the
trainer's reward. A pure library: importing it starts nothing, registers no atexit or at-fork hook and
imports neither vLLM nor the worker runtime (pebble, tqdm). Grading in killable worker processes, with hard
bounds, lives in :mod:`luffy_math.workers` (``GradingPool``, ``grade_many``).

The think tags and the answer extraction (:mod:`luffy_math.thinking`, :mod:`luffy_math.answer`) are plain
string code and load with the package; grading and the vote (sympy) load on first use of one of their names,
so that a module that needs only the tags (the trainer's recipe, loaded in every verl Ray worker) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from luffy_math.answer import as_boxed, boxed_answer
from luffy_math.thinking import (
    THINK_END,
    THINK_OPEN,
    THINK_START,
    StreamSplit,
    answer_part,
    answer_part_parsed,
    join_response,
    split_response,
)

if TYPE_CHECKING:
    from luffy_math.grader import MODES, Grade, GradeMode, available_modes, grade, grade_answer
    from luffy_math.vote import exact_majority, majority_vote

# The names that load their module on first use (module-level __getattr__, PEP 562).
_ON_FIRST_USE = {
    **dict.fromkeys(("MODES", "Grade", "GradeMode", "available_modes", "grade", "grade_answer"), "luffy_math.grader"),
    **dict.fromkeys(("exact_majority", "majority_vote"), "luffy_math.vote"),
}


def __getattr__(name: str) -> Any:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'luffy_math' has no attribute {name!r}")
    value = getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "MODES",
    "THINK_END",
    "THINK_OPEN",
    "THINK_START",
    "Grade",
    "GradeMode",
    "StreamSplit",
    "answer_part",
    "answer_part_parsed",
    "as_boxed",
    "available_modes",
    "boxed_answer",
    "exact_majority",
    "grade",
    "grade_answer",
    "join_response",
    "majority_vote",
    "split_response",
]
