"""Our "luffy" mode gives the labels of LUFFY's own grader (recorded from it as data)."""

from __future__ import annotations

import json
from pathlib import Path

from luffy_math.workers import GradingPool

DATA = Path(__file__).parent / "data" / "luffy_parity_cases.json"


def test_labels_match_luffys_grader(grading_pool: GradingPool) -> None:
    cases = json.loads(DATA.read_text())["cases"]
    assert len(cases) == 698 and sum(case["luffy"] for case in cases) == 451
    items = [(case["response"], case["gold"]) for case in cases]
    batches = [grading_pool.submit_batch(items[start : start + 25]) for start in range(0, len(items), 25)]
    grades = [g for batch in batches for g in batch.result(timeout=300)]
    assert not [g for g in grades if g.timed_out]
    differing = [(case["gold"], case["response"], case["luffy"], g.decided_by)
                 for case, g in zip(cases, grades, strict=True) if g.correct != case["luffy"]]
    assert differing == []
    by_step = {step: sum(g.decided_by == step for g in grades) for step in ("mathd", "sympy", "math_verify")}
    assert all(count > 0 for count in by_step.values()), by_step  # every step of LUFFY's grader is exercised
