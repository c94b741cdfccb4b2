"""AIME 2025: the 30 problems of AIME 2025 I and II."""

from __future__ import annotations

from benchmarks.problems import Benchmark
from benchmarks.tasks.hub import load_rows, problem_answer_rows

REPO = "yentinglin/aime_2025"

BENCHMARK = Benchmark(
    name="aime25", title="AIME 25", variant=f"{REPO} (train, 30 problems)", default_n=32, math=True,
    luffy_source="aime25", load_hub=lambda: problem_answer_rows("aime25", load_rows(REPO, "train")),
)
