"""AMC as LUFFY, OAT and DeepScaleR count it: the 83 AMC12 2022-23 problems (not the 40 of AMC23)."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows

REPO = "AI-MO/aimo-validation-amc"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    # The hub stores answers as float64; str() gives LUFFY's gold strings ("142.0").
    return [Problem("amc", str(row.get("id", i)), row["problem"], str(row["answer"])) for i, row in enumerate(rows)]


BENCHMARK = Benchmark(
    name="amc", title="AMC", variant=f"{REPO} (train, 83 AMC12 2022-23 problems)", default_n=32, math=True,
    luffy_source="amc", load_hub=lambda: to_problems(load_rows(REPO, "train")),
)
