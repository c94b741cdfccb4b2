"""Published rows to compare a run against: the LUFFY-1.5B model card's table and the LUFFY README's rows.

Figures only (accuracy in %, the six math benchmarks in the paper's order), each row with its source and the
settings it was measured with, so a comparison can say where a run's settings differ. A published "Avg." is
kept as printed; :func:`mean_of_six` says whether it is the mean of its six numbers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from benchmarks.tasks import BENCHMARKS, MATH_BENCHMARKS

CARD_1_5B = "huggingface.co/Elliott/LUFFY-Qwen-Math-1.5B-Zero (model card, Evaluation table)"
LUFFY_README = "github.com/ElliottYan/LUFFY README.md @ 01f4ae0 (own template, T 0.6, 8k tokens, avg@32)"


@dataclass(frozen=True)
class Settings:
    """How a published row was measured: sampling, samples per problem (avg@n) and problems per benchmark."""

    temperature: float
    top_p: float
    max_tokens: int
    n: dict[str, int]  # benchmark -> samples per problem
    problems: dict[str, int]  # benchmark -> problems in the full set
    basis: str  # where these settings are stated

    def describe(self) -> str:
        """The settings in one line (without their basis)."""
        by_n: dict[int, list[str]] = {}
        for benchmark in MATH_BENCHMARKS:
            by_n.setdefault(self.n[benchmark], []).append(BENCHMARKS[benchmark].title)
        samples = "; ".join(f"n {n} on {', '.join(names)}" for n, names in by_n.items())
        full = ", ".join(f"{BENCHMARKS[b].title} {self.problems[b]}" for b in MATH_BENCHMARKS)
        return (f"temperature {self.temperature}, top_p {self.top_p}, max_tokens {self.max_tokens}; {samples}; "
                f"full sets ({full} problems)")


# LUFFY's evaluation (github.com/ElliottYan/LUFFY eval_scripts/generate_vllm.py, valid.all.parquet): T 0.6,
# top_p 1.0, max_tokens 8192 (hard-coded), AIME 24/25 and AMC repeated 32 times in the parquet (avg@32), the
# others once, on the full sets.
LUFFY_EVAL_N = {"aime24": 32, "aime25": 32, "amc": 32, "math500": 1, "minerva": 1, "olympiad": 1}
LUFFY_EVAL_PROBLEMS = {"aime24": 30, "aime25": 30, "amc": 83, "math500": 500, "minerva": 272, "olympiad": 675}
LUFFY_README_SETTINGS = Settings(0.6, 1.0, 8192, LUFFY_EVAL_N, LUFFY_EVAL_PROBLEMS,
                                 "README rows: as LUFFY's README and evaluation script state")
CARD_SETTINGS = Settings(0.6, 1.0, 8192, LUFFY_EVAL_N, LUFFY_EVAL_PROBLEMS,
                         "card rows: the card states none, LUFFY's evaluation script's are assumed")


@dataclass(frozen=True)
class PublishedRow:
    label: str
    source: str
    values: dict[str, float]  # benchmark name -> accuracy in %
    avg: float | None = None  # the "Avg." as published, when there is one
    settings: Settings = LUFFY_README_SETTINGS

    def mean_of_six(self) -> float:
        return statistics.fmean(self.values[b] for b in MATH_BENCHMARKS)

    def avg_note(self) -> str | None:
        """A note when the published Avg. is not the mean of the six numbers (to one decimal)."""
        if self.avg is None:
            return None
        mean = self.mean_of_six()
        if abs(round(mean, 1) - self.avg) < 0.05 + 1e-9:
            return None
        return f"published Avg. {self.avg:.1f} is not the mean of its six numbers ({mean:.1f})"


def _row(label: str, source: str, six: tuple[float, ...], avg: float | None = None) -> PublishedRow:
    settings = CARD_SETTINGS if source == CARD_1_5B else LUFFY_README_SETTINGS
    return PublishedRow(label, source, dict(zip(MATH_BENCHMARKS, six, strict=True)), avg, settings)


# AIME 24, AIME 25, AMC, MATH-500, Minerva, Olympiad (and the table's Avg.).
CARDS: dict[str, list[PublishedRow]] = {
    "luffy-qwen-math-1.5b-zero": [
        _row("Qwen2.5-Math-1.5B-Base (card)", CARD_1_5B, (7.9, 4.7, 26.4, 31.0, 12.1, 21.5), 17.3),
        _row("Qwen2.5-Math-1.5B-Instruct (card)", CARD_1_5B, (11.4, 8.5, 47.4, 75.2, 27.6, 38.7), 34.8),
        _row("SFT (card)", CARD_1_5B, (15.2, 14.3, 43.5, 74.8, 30.9, 36.9), 40.3),
        _row("On-Policy RL (card)", CARD_1_5B, (12.6, 6.5, 42.6, 68.8, 22.1, 34.4), 36.1),
        _row("LUFFY-1.5B-Zero (card)", CARD_1_5B, (15.2, 12.7, 46.8, 79.4, 26.5, 42.4), 42.1),
        _row("Qwen2.5-Math-1.5B (LUFFY README)", LUFFY_README, (7.2, 3.6, 26.4, 28.0, 9.6, 21.2)),
        _row("Qwen2.5-Math-1.5B-Instruct (LUFFY README)", LUFFY_README, (12.1, 8.9, 48.1, 77.4, 28.7, 39.1)),
        _row("LUFFY-Qwen-Math-1.5B-Zero (LUFFY README)", LUFFY_README, (16.0, 13.1, 47.1, 80.2, 30.5, 41.0)),
    ],
}


def reference_rows(spec: str) -> list[PublishedRow]:
    """The rows named by ``card:NAME`` (a registry name); ValueError with the known names otherwise."""
    kind, _, name = spec.partition(":")
    if kind != "card" or name not in CARDS:
        known = ", ".join(f"card:{n}" for n in CARDS)
        raise ValueError(f"unknown reference {spec!r}; known: {known}")
    return CARDS[name]
