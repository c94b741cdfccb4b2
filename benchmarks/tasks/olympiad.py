"""OlympiadBench: the 675 English, open-ended, text-only competition-math problems."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import load_rows

REPO, CONFIG = "Hothan/OlympiadBench", "OE_TO_maths_en_COMP"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    # LUFFY's gold is the first of the listed final answers.
    return [Problem("olympiad", str(row.get("id", i)), row["question"], str(row["final_answer"][0]))
            for i, row in enumerate(rows)]


BENCHMARK = Benchmark(
    name="olympiad", title="Olympiad", variant=f"{REPO} {CONFIG} (train, 675 problems; gold = final_answer[0])",
    default_n=1, math=True, luffy_source="olympiad_bench",
    load_hub=lambda: to_problems(load_rows(REPO, "train", CONFIG)),
)
