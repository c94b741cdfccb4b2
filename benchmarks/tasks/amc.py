"""AMC as LUFFY, OAT and DeepScaleR count it: the 83 AMC12 2022-23 problems (not the 40 of AMC23)."""

from __future__ import annotations

from benchmarks.problems import Benchmark
from benchmarks.tasks.hub import load_rows, problem_answer_rows

REPO = "AI-MO/aimo-validation-amc"

BENCHMARK = Benchmark(
    name="amc", title="AMC", variant=f"{REPO} (train, 83 AMC12 2022-23 problems)", default_n=32, math=True,
    luffy_source="amc", load_hub=lambda: problem_answer_rows("amc", load_rows(REPO, "train")),
)
