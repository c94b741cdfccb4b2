"""The viewer's reading of a run: grouping, each filter, the answer-text search, a store still being written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from viewer_runs import write_runs

from app.runs import FILTERS, RunView, sample_markdown


@pytest.fixture
def runs(tmp_path: Path) -> tuple[RunView, RunView]:
    base, tuned = write_runs(tmp_path)
    return RunView.open(base), RunView.open(tuned)


@pytest.mark.parametrize(("verdict", "expected"), [
    ("all samples", {"aime24": ["0"], "math500": ["0", "1", "2"]}),
    ("correct (luffy)", {"aime24": ["0"], "math500": ["0", "1"]}),
    ("wrong (luffy)", {"aime24": ["0"], "math500": ["2"]}),
    ("correct (math_verify)", {"aime24": ["0"], "math500": ["0", "1", "2"]}),
    ("wrong (math_verify)", {"aime24": ["0"], "math500": []}),
    ("graders disagree", {"aime24": [], "math500": ["2"]}),
    ("truncated", {"aime24": ["0"], "math500": []}),
    ("grader timeout", {"aime24": ["0"], "math500": []}),
])
def test_each_filter_keeps_the_problems_with_a_matching_sample(runs, verdict: str, expected: dict) -> None:
    base, _ = runs
    assert {b: list(base.matching(b, verdict)) for b in base.benchmarks()} == expected
    assert set(FILTERS) >= {verdict}


def test_a_filter_keeps_only_the_matching_samples_of_a_problem(runs) -> None:
    base, _ = runs
    (truncated,) = base.matching("aime24", "truncated")["0"]
    assert truncated.record["sample"] == 1 and truncated.reasoning_and_answer() == (None, "Still thinking, the sum is 2")
    assert [s.record["sample"] for s in base.matching("aime24", "all samples")["0"]] == [0, 1]


def test_answer_text_searches_extracted_answers_and_answer_parts(runs) -> None:
    base, tuned = runs
    assert list(tuned.matching("math500", "all samples", "24")) == ["0"]  # its extracted answer
    assert list(base.matching("math500", "all samples", "THE ANSWER IS")) == ["0", "2"]  # the answer part
    assert list(base.matching("math500", "all samples", "step by step")) == []  # the thought is not searched


def test_problem_rows_and_sample_facts(runs) -> None:
    base, _ = runs
    assert base.problem_rows("math500", "graders disagree") == [["2", "42", "1/1", 0.0, 100.0]]
    assert base.problem_rows("aime24", "all samples") == [["0", "204", "2/2", 50.0, 50.0]]
    facts = sample_markdown(base.samples("aime24", "0")[1])
    assert "| math_verify | `2` | timed out | timeout |" in facts and "| luffy | — | wrong | unformatted |" in facts and "finish: length" in facts
    reasoning, answer = base.samples("math500", "0")[0].reasoning_and_answer()
    assert reasoning.startswith("Let me think") and answer.strip() == "The answer is $\\boxed{42}$."


def test_a_store_still_being_written_is_read_and_reloaded(tmp_path: Path) -> None:
    base, _ = write_runs(tmp_path)
    store = base / "generations.seed0.jsonl"
    lines = store.read_text().splitlines()
    store.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # a writer mid-line
    view = RunView.open(base)
    assert sum(len(p) for p in view.problems.values()) == 1
    store.write_text("\n".join(lines) + "\n" + json.dumps({**json.loads(lines[0]), "problem": "9"}) + "\n")
    view.reload()
    assert list(view.problems["math500"]) == ["0", "1", "2", "9"]


def test_a_run_with_luffy_exact_labels_shows_them(tmp_path: Path) -> None:
    """A run graded where LUFFY's pinned environment exists: the third grader's column, facts and filter."""
    from dataclasses import asdict

    from luffy_math.workers import grade_one

    lines = []
    for problem, (answer, gold) in enumerate([("0,006", "0.006"), ("7", "7")]):
        response = f"Thinking.\n</think>\n\nSo $\\boxed{{{answer}}}$."
        grades = {mode: asdict(grade_one(response, gold, mode)) for mode in ("luffy", "luffy_exact", "math_verify")}
        lines.append(json.dumps({"benchmark": "math500", "problem": str(problem), "sample": 0, "seed": 0,
                                 "config_hash": "x", "prompt": "p", "response": response, "gold": gold,
                                 "extracted": answer, "grades": grades}))
    (tmp_path / "generations.seed0.jsonl").write_text("\n".join(lines) + "\n")
    run = RunView.open(tmp_path)
    assert run.graders == ["luffy", "luffy_exact", "math_verify"]
    assert run.table_headers()[-3:] == ["luffy avg@k %", "luffy_exact avg@k %", "math_verify avg@k %"]
    # math-verify 0.6.0 (LUFFY's pin) refuses 0,006 for 0.006, 0.9.0 accepts it
    assert run.problem_rows("math500", "luffy and luffy_exact disagree") == [["0", "0.006", "1/1", 100.0, 0.0, 100.0]]
    assert "| luffy_exact | `0,006` | wrong | no_match |" in sample_markdown(run.samples("math500", "0")[0])


def test_the_answer_part_and_the_thought_as_shown(tmp_path: Path) -> None:
    """The answer part is what LUFFY grades; an output with no </think> is all thought, unfinished, and all of
    it is graded: it shows as the answer part, and the thought says why it is not shown apart."""
    from app.runs import UNFINISHED, Sample, shown_parts

    def shown(response: str) -> tuple[str, str]:
        return shown_parts(Sample({"response": response, "sample": 0}))

    assert shown("<think>\nHmm.\n</think>\n\nSo $\\boxed{4}$.") == ("\n\nSo $\\boxed{4}$.", "\nHmm.\n")
    assert shown("Still thinking, the sum is 2") == ("Still thinking, the sum is 2", UNFINISHED)
    assert shown("Hmm.</think>") == ("*(empty)*", "Hmm.")
    assert shown("</think>4") == ("4", "*(empty thought)*")
    assert shown("a</think>b</think>c") == ("b</think>c", "a")  # the first </think> ends the thought


def test_samples_without_labels_are_listed_in_the_runs_order(tmp_path: Path) -> None:
    """Problems by number (10 after 9), benchmarks in the paper's order; a sample no grader labelled yet is
    shown, and counts as wrong."""
    lines = [{"benchmark": b, "problem": p, "sample": 0, "response": "x", "gold": "1"}
             for b, p in [("zeta", "0"), ("math500", "10"), ("math500", "9"), ("amc", "a")]]
    (tmp_path / "generations.seed0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    run = RunView.open(tmp_path)
    assert run.graders == [] and run.benchmarks() == ["amc", "math500", "zeta"]
    assert list(run.problems["math500"]) == ["9", "10"]
    assert list(run.matching("math500", "wrong (luffy)")) == ["9", "10"]
    assert run.problem_rows("math500", "all samples") == [["9", "1", "1/1"], ["10", "1", "1/1"]]
