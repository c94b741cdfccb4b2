"""Math-Verify's own test suite (270 gold/prediction/expected cases, kept as data) against our modes.

Two checks per case:
- the pinned Math-Verify, called with the options the upstream test used, gives the expected label (this is
  what catches a bad version: 0.7.0 fails the repeated-\\boxed cases, 0.6.0 the percent ones);
- ``grade(pred, gold, mode="math_verify")`` (plain defaults, gold wrapped in ``$…$``) gives the expected
  label too, except for the 10 cases marked ``plain_mode`` in the data, where the data says what it gives
  instead and why (non-default upstream options, or the ``$…$`` wrapping of the gold).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from luffy_math import grade

DATA = Path(__file__).parent / "data" / "math_verify_cases.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]


def _upstream_label(case: dict[str, Any]) -> int:
    """The upstream test's own call: its extraction configs and verify options."""
    if case["match_types"] == "default":
        return int(verify(parse(case["gold"]), parse(case["pred"])))
    configs = [LatexExtractionConfig(boxed_match_priority=0) if kind == "latex" else ExprExtractionConfig()
               for kind in case["match_types"]]
    return int(verify(parse(case["gold"], configs), parse(case["pred"], configs),
                      float_rounding=case["precision"], strict=case["strict"],
                      allow_set_relation_comp=case["allow_set_relation_comp"]))


def test_suite_size() -> None:
    assert len(CASES) == 270
    assert sum("plain_mode" in case for case in CASES) == 10


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['source'].split('::')[1]}" for i, c in enumerate(CASES)])
def test_case(case: dict[str, Any]) -> None:
    assert _upstream_label(case) == case["expected"]
    plain = case.get("plain_mode", {"expected": case["expected"]})
    assert int(grade(case["pred"], case["gold"], mode="math_verify").correct) == plain["expected"], plain.get("why")


def test_latex_parser_is_complete_here() -> None:
    """The serving env has ANTLR 4.13.2; the trainer's 4.9.3 parser is stale (see latex_parser_complete)."""
    from luffy_math.grader import latex_parser_complete

    assert latex_parser_complete()
