"""MMLU-Pro, test split (12,032 questions, up to ten options A-J)."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows, multiple_choice

REPO = "TIGER-Lab/MMLU-Pro"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    return [Problem("mmlu_pro", str(row.get("question_id", i)), multiple_choice(row["question"], list(row["options"])),
                    str(row["answer"])) for i, row in enumerate(rows)]


BENCHMARK = Benchmark(
    name="mmlu_pro", title="MMLU-Pro", variant=f"{REPO} (test, 12,032 questions)", default_n=1, math=False,
    luffy_source="mmlu_pro", load_hub=lambda: to_problems(load_rows(REPO, "test")),
)
