"""luffy_math: the one place for answer extraction, grading and majority vote.

Used by the server (``answer``/``majority_answer`` fields, ``POST /v1/grade``), the benchmark harness and the
trainer's reward. A pure library: importing it starts nothing, registers no atexit or at-fork hook and
imports neither vLLM nor the worker runtime (pebble, tqdm). Grading in killable worker processes, with hard
bounds, lives in :mod:`luffy_math.workers` (``GradingPool``, ``grade_many``).
"""

from __future__ import annotations

from luffy_math.answer import answer_part, answer_part_parsed, as_boxed, boxed_answer, split_reasoning
from luffy_math.grader import MODES, Grade, GradeMode, available_modes, grade, grade_answer
from luffy_math.vote import exact_majority, majority_vote

__all__ = [
    "MODES",
    "Grade",
    "GradeMode",
    "answer_part",
    "answer_part_parsed",
    "as_boxed",
    "available_modes",
    "boxed_answer",
    "exact_majority",
    "grade",
    "grade_answer",
    "majority_vote",
    "split_reasoning",
]
