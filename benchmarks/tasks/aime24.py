"""AIME 2024: the 30 problems of AIME 2024 I and II."""

from __future__ import annotations

from benchmarks.problems import Benchmark
from benchmarks.tasks.hub import load_rows, problem_answer_rows

REPO = "HuggingFaceH4/aime_2024"

BENCHMARK = Benchmark(
    name="aime24", title="AIME 24", variant=f"{REPO} (train, 30 problems)", default_n=32, math=True,
    luffy_source="aime", load_hub=lambda: problem_answer_rows("aime24", load_rows(REPO, "train")),
)
