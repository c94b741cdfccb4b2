"""Minerva: the 272 MIT OCW problems, gold = the last \\boxed{} of the reference solution (LUFFY's golds)."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import Benchmark, HarnessError, Problem
from benchmarks.tasks.hub import load_rows

REPO = "knoveleng/Minerva-Math"


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    from luffy_math.answer import last_boxed

    problems = []
    for i, row in enumerate(rows):
        gold = last_boxed(row["solution"], allow_fbox=True)  # some reference solutions box with \fbox
        if gold is None:
            raise HarnessError(f"{REPO} row {i}: the solution has no \\boxed{{}} answer")
        problems.append(Problem("minerva", str(i), row["problem"], gold))
    return problems


BENCHMARK = Benchmark(
    name="minerva", title="Minerva", variant=f"{REPO} (train, 272 problems; gold = last \\boxed{{}} of solution)",
    default_n=1, math=True, luffy_source="minerva", load_hub=lambda: to_problems(load_rows(REPO, "train")),
)
