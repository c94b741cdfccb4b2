"""MATH-500: the 500-problem test subset of Hendrycks MATH chosen by PRM800K."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows, problem_answer_rows

REPO = "HuggingFaceH4/MATH-500"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    return problem_answer_rows("math500", rows, id_field="unique_id")


BENCHMARK = Benchmark(
    name="math500", title="MATH-500", variant=f"{REPO} (test, 500 problems)", default_n=1, math=True,
    luffy_source="math", load_hub=lambda: to_problems(load_rows(REPO, "test")),
)
