"""One run's grader labels as one table (pandas): a row per sample and grader, in the order every listing shows.

metrics (and through it the report), compare and the results viewer read a run's labels from this table, so
they group, order and count them alike:

- order: benchmarks in the paper's column order (:func:`benchmarks.tasks.paper_order`; ``benchmark`` is an
  ordered categorical), then problems by number (:func:`problem_order`), seed, sample and grader (GRADERS
  order; ``grader`` is an ordered categorical too);
- a sample without a grader's label (none recorded, or None: the grader crashed) still has its row, with
  ``graded`` False and ``correct`` False: it counts as wrong, and as ungraded.

Columns: ``benchmark``, ``problem`` (str), ``seed``, ``sample`` (int), ``grader``, ``graded``, ``correct``,
``extracted`` (the grader's answer or None), ``formatted``, ``timed_out`` (the label's fields), ``truncated``
(the output hit max_tokens), ``tokens`` (completion tokens, <NA> when not recorded) and ``record`` (the
record's position in the list the table was made from).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from benchmarks.grading import GRADERS
from benchmarks.tasks import paper_order


def recorded_graders(records: Sequence[dict[str, Any]]) -> list[str]:
    """The graders (GRADERS order) whose label any record carries: a run made where the environment with
    LUFFY's pins was missing has no "luffy_exact" labels, and an older harness recorded two graders only."""
    return [g for g in GRADERS if any(g in (r.get("grades") or {}) for r in records)]


def problem_order(problem: str) -> tuple[int, int | str]:
    """Numbered problems by their number, then the others by name."""
    return (0, int(problem)) if problem.isdecimal() else (1, problem)


def labels_table(records: Sequence[dict[str, Any]], graders: Sequence[str] | None = None) -> pd.DataFrame:
    """The labels of ``graders`` (default: :func:`recorded_graders`) on every record, a row each, sorted (see the
    module)."""
    graders = list(recorded_graders(records) if graders is None else graders)
    benchmarks = paper_order(r["benchmark"] for r in records)
    position = {name: i for i, name in enumerate(benchmarks)}
    order = sorted(range(len(records)), key=lambda i: (
        position[records[i]["benchmark"]], problem_order(str(records[i]["problem"])),
        int(records[i].get("seed", 0)), int(records[i]["sample"])))

    def each_grader(values: list[Any]) -> list[Any]:  # a sample's value on each of its graders' rows
        return [value for value in values for _ in graders]

    ordered = [records[i] for i in order]
    labels = [(r.get("grades") or {}).get(grader) for r in ordered for grader in graders]
    fields = [label or {} for label in labels]
    return pd.DataFrame({
        "benchmark": pd.Categorical(each_grader([r["benchmark"] for r in ordered]), categories=benchmarks,
                                    ordered=True),
        "problem": pd.Series(each_grader([str(r["problem"]) for r in ordered]), dtype=object),
        "seed": pd.Series(each_grader([int(r.get("seed", 0)) for r in ordered]), dtype="int64"),
        "sample": pd.Series(each_grader([int(r["sample"]) for r in ordered]), dtype="int64"),
        "grader": pd.Categorical(graders * len(ordered), categories=graders, ordered=True),
        "graded": pd.Series([label is not None for label in labels], dtype=bool),
        "correct": pd.Series([bool(f.get("correct")) for f in fields], dtype=bool),
        "extracted": pd.Series([f.get("extracted") for f in fields], dtype=object),  # None: no answer, no vote
        "formatted": pd.Series([bool(f.get("formatted")) for f in fields], dtype=bool),
        "timed_out": pd.Series([bool(f.get("timed_out")) for f in fields], dtype=bool),
        "truncated": pd.Series(each_grader([r.get("finish_reason") == "length" for r in ordered]), dtype=bool),
        "tokens": pd.Series(each_grader([r.get("completion_tokens") for r in ordered]), dtype="Int64"),
        "record": pd.Series(each_grader(order), dtype="int64"),
    })


def per_sample(table: pd.DataFrame) -> pd.DataFrame:
    """One row per sample (its first grader's), in the table's order: the samples' own columns (benchmark,
    problem, seed, sample, truncated, tokens, record) without the labels repeated per grader."""
    return table[table["grader"] == table["grader"].cat.categories[0]] if len(table) else table
