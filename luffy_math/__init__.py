"""luffy_math: the one place for answer extraction, grading and majority vote.

Used by the server (``answer``/``majority_answer`` fields, ``POST /v1/grade``), the benchmark harness and the
trainer's reward. It must not import vLLM: the trainer's environment imports it too.
"""

from __future__ import annotations

from luffy_math.extraction import extract_answer, split_reasoning
from luffy_math.grader import MODES, Grade, GradeMode, available_modes, grade
from luffy_math.pool import GradingPool, grade_many
from luffy_math.vote import majority_vote

__all__ = [
    "MODES",
    "Grade",
    "GradeMode",
    "GradingPool",
    "available_modes",
    "extract_answer",
    "grade",
    "grade_many",
    "majority_vote",
    "split_reasoning",
]
