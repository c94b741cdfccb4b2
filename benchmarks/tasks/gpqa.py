"""GPQA-diamond (198 questions; gated on the hub: log in with a token that has accepted its terms)."""

from __future__ import annotations

import random
from typing import Any

from benchmarks.problems import Benchmark, Problem
from benchmarks.tasks.hub import MC_LETTERS, load_rows, multiple_choice

REPO, CONFIG = "Idavidrein/gpqa", "gpqa_diamond"
INSTRUCTION = ("Answer the following multiple choice question. The last line of your response should be of the "
               "following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by "
               "step before answering.\n\n")
SHUFFLE_SEED = 0  # the hub lists the correct answer first; the options are shuffled once, reproducibly


def to_problems(rows: list[dict[str, Any]]) -> list[Problem]:
    problems = []
    for i, row in enumerate(rows):
        options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"],
                   row["Incorrect Answer 3"]]
        order = list(range(4))
        random.Random(f"{SHUFFLE_SEED}-{i}").shuffle(order)
        shuffled = [options[j].strip() for j in order]
        gold = MC_LETTERS[order.index(0)]
        problems.append(Problem("gpqa", str(row.get("Record ID", i)),
                                INSTRUCTION + multiple_choice(row["Question"].strip(), shuffled).rstrip("\n"), gold))
    return problems


BENCHMARK = Benchmark(
    name="gpqa", title="GPQA-diamond", variant=f"{REPO} {CONFIG} (train, 198 questions, options shuffled "
    f"with seed {SHUFFLE_SEED})", default_n=1, math=False, luffy_source="gpqa",
    load_hub=lambda: to_problems(load_rows(REPO, "train", CONFIG)),
)
