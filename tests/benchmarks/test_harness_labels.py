"""The labels table every reader of a run shares: its order, missing labels, runs graded with different graders,
and maj@k taken from the recorded labels, so that building a report grades nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import metrics
from benchmarks.compare import load_run
from benchmarks.grading import GRADERS
from benchmarks.labels import labels_table, per_sample, recorded_graders
from benchmarks.report import build
from benchmarks.tasks import MATH_BENCHMARKS, paper_order


def label(correct: bool, extracted: str | None = "1", **more) -> dict:
    return {"correct": correct, "extracted": extracted, "formatted": extracted is not None, "timed_out": False,
            **more}


def record(benchmark: str, problem: str, sample: int, seed: int = 0, **grades) -> dict:
    return {"benchmark": benchmark, "problem": problem, "sample": sample, "seed": seed, "gold": "1",
            "grades": grades, "finish_reason": "stop", "completion_tokens": 10}


def test_paper_order_puts_known_benchmarks_first_and_the_others_by_name() -> None:
    assert paper_order(["zeta", "gpqa", "math500", "alpha", "aime24", "math500"]) == [
        "aime24", "math500", "gpqa", "alpha", "zeta"]
    assert paper_order(reversed(MATH_BENCHMARKS)) == MATH_BENCHMARKS


def test_rows_follow_benchmark_problem_seed_sample_and_grader_order_whatever_the_stored_order() -> None:
    keys = [("zeta", "b", 0, 0), ("math500", "10", 0, 1), ("math500", "10", 0, 0), ("math500", "2", 1, 0),
            ("math500", "2", 0, 0), ("alpha", "a", 0, 0), ("aime24", "x", 0, 0)]
    records = [record(b, p, n, s, math_verify=label(True), luffy=label(False)) for b, p, s, n in keys]
    table = labels_table(records)
    assert list(table["benchmark"].cat.categories) == ["aime24", "math500", "alpha", "zeta"]
    assert table["benchmark"].cat.ordered and list(table["grader"].cat.categories) == ["luffy", "math_verify"]
    rows = list(zip(table["benchmark"], table["problem"], table["seed"], table["sample"], table["grader"],
                    strict=True))
    expected = [("aime24", "x", 0, 0), ("math500", "2", 0, 0), ("math500", "2", 1, 0), ("math500", "10", 0, 0),
                ("math500", "10", 0, 1), ("alpha", "a", 0, 0), ("zeta", "b", 0, 0)]
    assert rows == [(*key, g) for key in expected for g in ("luffy", "math_verify")]
    samples = per_sample(table)
    assert [records[i]["problem"] for i in samples["record"]] == [p for _, p, _, _ in expected]
    assert samples["correct"].tolist() == [False] * len(records)  # the first grader's (luffy's) rows


def test_a_missing_label_has_its_row_counted_wrong_and_ungraded() -> None:
    records = [record("amc", "0", 0, luffy=label(True), luffy_exact=label(True), math_verify=label(True)),
               record("amc", "0", 1, luffy=label(True), math_verify=None),  # no luffy_exact; math_verify crashed
               record("amc", "1", 0, luffy=label(True), math_verify=label(False))]
    assert recorded_graders(records) == ["luffy", "luffy_exact", "math_verify"]
    table = labels_table(records)
    assert len(table) == 3 * 3
    exact = table[table["grader"] == "luffy_exact"]
    assert exact["graded"].tolist() == [True, False, False] and exact["correct"].tolist() == [True, False, False]
    assert exact["extracted"].tolist() == ["1", None, None]  # None stays None: it casts no vote
    verify = table[table["grader"] == "math_verify"]
    assert verify["graded"].tolist() == [True, False, True]
    result = metrics.compute(records)
    amc = result["benchmarks"]["amc"]
    assert amc["luffy_exact"]["ungraded"] == 2 and amc["math_verify"]["ungraded"] == 1
    assert amc["luffy_exact"]["avg"]["mean"] == pytest.approx((1 / 2 + 0) / 2)
    assert amc["luffy"]["avg"]["mean"] == 1.0


def test_explicit_graders_give_every_sample_its_rows_even_without_labels() -> None:
    records = [{"benchmark": "amc", "problem": "0", "sample": 0}, record("amc", "0", 1, luffy=label(True))]
    assert recorded_graders(records) == ["luffy"]
    table = labels_table(records, GRADERS)
    assert len(table) == 2 * len(GRADERS) and len(per_sample(table)) == 2
    assert table["graded"].tolist() == [False] * len(GRADERS) + [True] + [False] * (len(GRADERS) - 1)
    assert table["tokens"].isna().tolist()[: len(GRADERS)] == [True] * len(GRADERS)


def write_run(path: Path, records: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    by_seed: dict[int, list[str]] = {}
    for r in records:
        by_seed.setdefault(r["seed"], []).append(json.dumps(r))
    for seed, lines in by_seed.items():
        (path / f"generations.seed{seed}.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_a_run_graded_by_two_then_three_graders_scores_alike_in_metrics_and_compare(tmp_path: Path) -> None:
    """Seed 0 graded before luffy_exact existed, seed 1 with it: its missing labels count as wrong in both."""
    records = []
    for seed in (0, 1):
        for problem in range(4):
            for sample in range(2):
                right = (problem + sample + seed) % 3 != 0
                grades = {"luffy": label(right), "math_verify": label(not right)}
                if seed == 1:
                    grades["luffy_exact"] = label(right)
                records.append(record("math500", str(problem), sample, seed, **grades))
    run = write_run(tmp_path / "run", records)
    result = metrics.compute(records)
    math500 = result["benchmarks"]["math500"]
    assert result["graders"] == ["luffy", "luffy_exact", "math_verify"] and math500["seeds"] == [0, 1]
    assert math500["luffy_exact"]["avg"]["per_seed"] == [0.0, math500["luffy"]["avg"]["per_seed"][1]]
    assert math500["luffy_exact"]["ungraded"] == 8
    loaded = load_run(run, "run")
    assert loaded.benchmarks() == ["math500"] and loaded.seeds("math500") == [0, 1]
    assert loaded.samples_per_problem("math500") == (2, 2) and loaded.problem_count("math500") == 4
    for grader in result["graders"]:
        assert loaded.score("math500", grader) == pytest.approx(math500[grader]["avg"]["mean"])
    assert loaded.matrix("math500", "luffy_exact", loaded.problems("math500"))[0].tolist() == [0.0] * 4


def test_maj_at_k_takes_the_label_of_the_winning_groups_first_member() -> None:
    # "0.5" and "\frac{1}{2}" are one group (LUFFY's equivalence), first seen as sample 1: its label is the vote's
    assert metrics.majority_outcome([None, "0.5", "7", "\\frac{1}{2}"], [False, True, False, False]) == (True, False)
    assert metrics.majority_outcome(["24", "42"], [False, True]) == (False, True)  # a tie: the first seen wins
    assert metrics.majority_outcome([None, None], [False, False]) == (False, False)  # no answer: wrong
    samples = [record("amc", "0", i, luffy=label(c, a)) for i, (a, c) in enumerate([("3", False), ("4", True),
                                                                                    ("4", False)])]
    assert metrics.majority_correct(samples, "luffy") is True


def test_building_a_report_grades_nothing(tmp_path: Path, monkeypatch) -> None:
    """The recorded labels are the report's only verdicts: no grader runs and no grading pool starts, even where
    a recorded label disagrees with what grading the answer would say."""
    import luffy_math
    import luffy_math.grader
    from luffy_math.workers import GradingPool

    def refuse(*args, **kwargs):
        raise AssertionError("the report graded something")

    for module, name in [(luffy_math, "grade"), (luffy_math, "grade_answer"), (luffy_math.grader, "grade"),
                         (luffy_math.grader, "grade_answer")]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(GradingPool, "__init__", refuse)
    # gold 1; the majority answer "2" is labelled right by its first member (sample 1): the report keeps it
    records = [record("amc", "0", 0, luffy=label(False, "5")), record("amc", "0", 1, luffy=label(True, "2")),
               record("amc", "0", 2, luffy=label(False, "2.0")), record("amc", "0", 3, luffy=label(False, "2"))]
    markdown = build(write_run(tmp_path / "run", records))
    result = json.loads((tmp_path / "run" / "report.json").read_text())
    assert result["benchmarks"]["amc"]["luffy"]["maj"]["4"]["mean"] == 1.0
    assert "| AMC | 1 | 4 | 25.0 |" in markdown
