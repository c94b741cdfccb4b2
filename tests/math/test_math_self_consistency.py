"""Every gold of LUFFY's evaluation set, boxed back into a response, is graded correct against itself."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from luffy_math.workers import GradingPool

# Golds that plain Math-Verify does not accept against themselves (LUFFY's pinned 0.6.0 misses the same two):
MATH_VERIFY_EXCEPTIONS = {
    # the trailing "." after the closing "$" ends up inside the prediction's box: "\cup\{1\}." is not parsed
    # as the same set as the gold.
    r"$(-\infty, 0) \cup\{1\}$.",
    # a stray "$ $" in the middle splits the gold into two math spans; only the first half is the gold.
    r"x_{0} \cos (\omega t)+$ $\dot{x}_{0} \sin (\omega t) / \omega",
}


def _unique_golds(luffy_data: Path) -> list[str]:
    frame = pd.read_parquet(luffy_data / "valid.all.parquet", columns=["reward_model"])
    return list(dict.fromkeys(row["ground_truth"] for row in frame["reward_model"]))


def test_every_gold_matches_itself(luffy_data: Path) -> None:
    golds = _unique_golds(luffy_data)
    assert len(golds) == 1054
    items = [(f"The final answer is $\\boxed{{{gold}}}$.", gold) for gold in golds]
    with GradingPool(workers=2, timeout=20.0) as pool:
        futures = {mode: [pool.submit_batch(items[start : start + 32], mode) for start in range(0, len(items), 32)]
                   for mode in ("luffy", "math_verify")}
        results = {mode: [g for batch in batches for g in batch.result()] for mode, batches in futures.items()}
    for mode, grades in results.items():
        assert not [gold for gold, g in zip(golds, grades, strict=True) if g.timed_out], mode
        wrong = {gold for gold, g in zip(golds, grades, strict=True) if not g.correct}
        assert wrong == (set() if mode == "luffy" else MATH_VERIFY_EXCEPTIONS), mode
