"""What a benchmark is made of: problems with a gold answer, and the benchmark's identity card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class HarnessError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


@dataclass(frozen=True)
class Problem:
    benchmark: str
    problem_id: str
    prompt: str  # the user message, exactly as the model should see it (no system message)
    gold: str | list[str]
    n: int | None = None  # samples implied by the source (LUFFY's parquet repeats AIME/AMC rows 32 times)


@dataclass(frozen=True)
class Benchmark:
    name: str  # CLI name, e.g. "aime24"
    title: str  # column title in the paper's table, e.g. "AIME 24"
    variant: str  # the exact dataset variant the hub loader reads
    default_n: int  # samples per problem in LUFFY's eval
    math: bool  # counts towards "Avg." (the six math benchmarks)
    luffy_source: str  # the data_source name in LUFFY's parquet files
    load_hub: Callable[[], list[Problem]]
