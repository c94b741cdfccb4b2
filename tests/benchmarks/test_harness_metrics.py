"""Exact metric values on hand-made generation files, graded for real by luffy_math through `score`."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from benchmarks import metrics
from benchmarks.cli import main
from benchmarks.grading import graders_here
from benchmarks.tasks import MATH_BENCHMARKS


@pytest.mark.parametrize("n", [1, 2, 5, 16, 32])
def test_pass_at_k_matches_the_closed_form(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert metrics.pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_k_values() -> None:
    assert metrics.k_values(1) == [1]
    assert metrics.k_values(32) == [1, 2, 4, 8, 16, 32]
    assert metrics.k_values(6) == [1, 2, 4, 6]


def sample(benchmark: str, problem: str, index: int, answer: str | None, *, seed: int = 0,
           finish: str = "stop", tokens: int = 10, gold: str = "42") -> dict:
    response = "<think>\nhmm \\boxed{7}\n</think>\n\n" + (f"So $\\boxed{{{answer}}}$." if answer else "No idea.")
    return {"benchmark": benchmark, "problem": problem, "sample": index, "seed": seed, "response": response,
            "gold": gold, "finish_reason": finish, "completion_tokens": tokens}


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def score_file(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["score", str(path), "--no-progress", "--grading-workers", "1"]) == 0
    assert "| AMC |" in capsys.readouterr().out.replace("| Grader | AIME 24 | AIME 25 | AMC |", "| AMC |")
    return json.loads((path.parent / "report.json").read_text())


def test_score_gives_exact_avg_pass_maj_truncation_and_lengths(tmp_path: Path, capsys) -> None:
    # Problem a: 42, 42, 24, none (c=2); problem b: 24, 24, 42 (truncated), 24 (c=1). The boxed 7 inside the
    # thinking must not count: LUFFY grades the text after </think>.
    records = [sample("amc", "a", 0, "42", tokens=10), sample("amc", "a", 1, "42", tokens=20),
               sample("amc", "a", 2, "24", tokens=30), sample("amc", "a", 3, None, tokens=40),
               sample("amc", "b", 0, "24", tokens=50), sample("amc", "b", 1, "24", tokens=60),
               sample("amc", "b", 2, "42", finish="length", tokens=70), sample("amc", "b", 3, "24", tokens=80)]
    result = score_file(write(tmp_path / "gen.jsonl", records), capsys)
    amc = result["benchmarks"]["amc"]
    assert amc["problems"] == 2 and amc["samples_per_problem"] == 4
    assert result["graders"] == list(graders_here())  # luffy_exact too where .venv-exact exists
    for grader in graders_here():
        g = amc[grader]
        assert g["avg"]["mean"] == pytest.approx((2 / 4 + 1 / 4) / 2)
        assert g["pass"]["1"]["mean"] == pytest.approx((2 / 4 + 1 / 4) / 2)
        assert g["pass"]["2"]["mean"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2)
        assert g["pass"]["4"]["mean"] == pytest.approx(1.0)
        assert g["maj"]["1"]["mean"] == pytest.approx(0.5)  # a: 42 right; b: 24 wrong
        assert g["maj"]["4"]["mean"] == pytest.approx(0.5)
        assert g["avg"]["std"] is None  # one seed
    assert amc["luffy"]["formatted"]["mean"] == pytest.approx(7 / 8)
    assert amc["truncation_rate"]["mean"] == pytest.approx(1 / 8)
    assert amc["length"] == {"mean": 45, "median": 45, "max": 80}
    graded = [json.loads(line) for line in (tmp_path / "gen.jsonl").read_text().splitlines()]
    assert [r["extracted"] for r in graded[:4]] == ["42", "42", "24", None]
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_std_over_seeds_and_avg_over_the_six_math_benchmarks(tmp_path: Path, capsys) -> None:
    # Seed 0: every math benchmark right on its single problem except minerva; seed 1: all right.
    records = []
    for seed in (0, 1):
        for name in MATH_BENCHMARKS:
            right = not (seed == 0 and name == "minerva")
            records.append(sample(name, "p", 0, "42" if right else "41", seed=seed))
    records.append(sample("gpqa", "q", 0, "B", gold="B"))
    result = score_file(write(tmp_path / "gen.jsonl", records), capsys)
    minerva = result["benchmarks"]["minerva"]["luffy"]["avg"]
    assert minerva["per_seed"] == [0.0, 1.0]
    assert minerva["std"] == pytest.approx(statistics.stdev([0.0, 1.0]))
    avg = result["avg"]["luffy"]
    assert avg["per_seed"] == pytest.approx([5 / 6, 1.0])
    assert avg["mean"] == pytest.approx(11 / 12)
    assert result["benchmarks"]["gpqa"]["luffy"]["avg"]["mean"] == 1.0  # OOD: reported, not in Avg.
    markdown = (tmp_path / "report.md").read_text()
    assert ("| luffy | 100.0 ± 0.0 | 100.0 ± 0.0 | 100.0 ± 0.0 | 100.0 ± 0.0 | 50.0 ± 70.7 | 100.0 ± 0.0 "
            "| 91.7 ± 11.8 |") in markdown


def test_avg_is_absent_unless_all_six_math_benchmarks_exist(tmp_path: Path, capsys) -> None:
    result = score_file(write(tmp_path / "gen.jsonl", [sample("amc", "a", 0, "42")]), capsys)
    assert result["avg"] is None


def test_score_refuses_a_file_without_responses(tmp_path: Path, capsys) -> None:
    path = write(tmp_path / "gen.jsonl", [{"benchmark": "amc", "problem": "a", "sample": 0, "gold": "1"}])
    assert main(["score", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "lacks response" in err and "\n" not in err


def test_report_on_a_missing_directory_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'nope'}: no such file or directory"


def test_maj_at_k_counts_its_ties(tmp_path: Path, capsys) -> None:
    """maj@k keeps its rule (a tie goes to the tied answer seen first) and says how many problems tied: at k=2
    problem a is a 42-24 split (the first seen, 42, is right), problem b 24-24; at k=4 a is 42, 24, 24, 42."""
    records = [sample("amc", "a", 0, "42"), sample("amc", "a", 1, "24"), sample("amc", "a", 2, "24"),
               sample("amc", "a", 3, "42"),
               sample("amc", "b", 0, "24"), sample("amc", "b", 1, "24"), sample("amc", "b", 2, "42"),
               sample("amc", "b", 3, "7")]
    luffy = score_file(write(tmp_path / "gen.jsonl", records), capsys)["benchmarks"]["amc"]["luffy"]
    assert luffy["maj_ties"] == {"1": 0, "2": 1, "4": 1}
    assert luffy["maj"]["2"]["mean"] == 0.5 and luffy["maj"]["4"]["mean"] == 0.5  # a right by the tie rule
    report = (tmp_path / "report.md").read_text()
    assert "| maj@k ties |" in report and "| AMC | 2 | 4 | " in report
    assert report.split("| AMC | 2 | 4 | ")[1].split(" | ")[3] == "1"  # avg@k, pass@k, maj@k, then the ties
