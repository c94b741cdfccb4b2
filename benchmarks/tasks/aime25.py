"""AIME 2025: the 30 problems of AIME 2025 I and II."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows

REPO = "yentinglin/aime_2025"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    return [Problem("aime25", str(row.get("id", i)), row["problem"], str(row["answer"])) for i, row in enumerate(rows)]


BENCHMARK = Benchmark(
    name="aime25", title="AIME 25", variant=f"{REPO} (train, 30 problems)", default_n=32, math=True,
    luffy_source="aime25", load_hub=lambda: to_problems(load_rows(REPO, "train")),
)
