"""AIME 2024: the 30 problems of AIME 2024 I and II."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows

REPO = "HuggingFaceH4/aime_2024"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    return [Problem("aime24", str(row.get("id", i)), row["problem"], str(row["answer"])) for i, row in enumerate(rows)]


BENCHMARK = Benchmark(
    name="aime24", title="AIME 24", variant=f"{REPO} (train, 30 problems)", default_n=32, math=True,
    luffy_source="aime", load_hub=lambda: to_problems(load_rows(REPO, "train")),
)
