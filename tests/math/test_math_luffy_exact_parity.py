"""LUFFY's labels exactly: the "luffy_exact" mode against LUFFY's own grader under LUFFY's pins.

``data/luffy_exact_cases.json``: 8,789 answers built from the golds of LUFFY's parquet by
``scripts/make_parity_cases.py`` (38 shapes: equivalent forms, near misses, several boxes, units, percents,
thousands separators, equations, complex numbers, matrices, ...), labelled by LUFFY's
``eval_scripts/oat_math_grader.py`` run outside this repository under math-verify 0.6.0 /
latex2sympy2_extended 1.0.9 / sympy 1.13.3 / antlr4 4.9.3 / pylatexenc 2.10 (the labels only, as data).
The "luffy" mode, on this package's newer libraries, differs on a known list (docs/luffy_math.md).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from luffy_math.workers import grade_many

DATA = Path(__file__).parent / "data" / "luffy_exact_cases.json"
CASES = json.loads(DATA.read_text())["cases"]
# Where "luffy" (math-verify 0.9.0, latex2sympy2_extended 1.11.0) labels otherwise, by class: all in its
# Math-Verify step (docs/luffy_math.md lists them).
LUFFY_MODE_DIFFERENCES = {"equation": 18, "sqrt": 4, "thousands": 3, "percent": 2, "sign_error": 2, "degrees": 1,
                          "long_expression": 1}


def _differing(mode: str) -> list[tuple[dict, object]]:
    grades = grade_many([(case["response"], case["gold"]) for case in CASES], mode=mode, progress=False)
    assert not [g for g in grades if g.timed_out]
    return [(case, g) for case, g in zip(CASES, grades, strict=True) if g.correct != case["luffy"]]


def test_the_suite_is_large_and_covers_its_shapes() -> None:
    classes = collections.Counter(case["class"] for case in CASES)
    assert len(CASES) == 8789 and sum(case["luffy"] for case in CASES) == 5774
    assert len(classes) == 38 and max(classes.values()) <= 0.07 * len(CASES)
    for shape in ("equation", "complex", "subscript", "thousands", "percent", "matrix", "interval", "multi_box",
                  "unclosed_empty", "sci_notation", "units", "text_wrap"):
        assert classes[shape] >= 100, shape


def test_luffy_exact_gives_luffys_labels() -> None:
    differing = _differing("luffy_exact")
    assert len(differing) <= len(CASES) // 1000, [(c["class"], c["gold"], c["response"][-60:]) for c, _ in differing]


def test_the_luffy_mode_differs_only_where_the_library_versions_do() -> None:
    differing = _differing("luffy")
    assert collections.Counter(case["class"] for case, _ in differing) == LUFFY_MODE_DIFFERENCES
    # every one is decided in (or by the absence of) the Math-Verify step, never by the string or sympy steps
    assert {g.decided_by for _, g in differing} <= {"math_verify", "no_match"}
