"""ARC-Challenge, test split (1172 questions); LUFFY's grader needs the letter in \\boxed{}."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows, multiple_choice

REPO, CONFIG = "allenai/ai2_arc", "ARC-Challenge"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    return [Problem("arc_c", str(row["id"]),
                    multiple_choice(row["question"], row["choices"]["text"], row["choices"]["label"]),
                    str(row["answerKey"])) for row in rows]


BENCHMARK = Benchmark(
    name="arc_c", title="ARC-c", variant=f"{REPO} {CONFIG} (test, 1172 questions)", default_n=1, math=False,
    luffy_source="arc_c", load_hub=lambda: to_problems(load_rows(REPO, "test", CONFIG)),
)
