"""Adaptive votes in the harness: `replay` over recorded runs, and `run --vote adaptive` (maj@k only) on the
session's real vLLM engine."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.adaptive import run_adaptive
from benchmarks.cli import main
from benchmarks.problems import HarnessError
from benchmarks.replay import Problem, first_leader, replay, replay_problem, run_replay
from benchmarks.runner import RunOptions
from benchmarks.samplers.base import Sampling
from benchmarks.store import read_records
from luffy_math.vote import more_to_settle


def write_run(path: Path, problems: dict[str, list[str | None]], gold: str = "1") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "generations.seed0.jsonl").open("w") as f:
        for problem, answers in problems.items():
            for sample, answer in enumerate(answers):
                grade = {"extracted": answer, "correct": answer == gold}
                f.write(json.dumps({"benchmark": "set", "problem": problem, "sample": sample, "gold": gold,
                                    "extracted": answer, "grades": {"luffy": grade}}) + "\n")
    return path


def test_replay_by_hand(tmp_path: Path):
    """Unanimous samples stop at the fewest that can decide (4 at 0.95, 2 at 0.8) in every order; near
    confidence 1 every problem takes all its samples and agrees with the full vote."""
    unanimous = Problem("set", [0] * 8, {0: True})
    assert replay_problem(unanimous, (0.8, 0.95), 10, random.Random(0)) == {
        0.8: (2.0, 1.0, 1.0, 1.0), 0.95: (4.0, 1.0, 1.0, 1.0)}
    mixed = [Problem("set", [0, 0, 0, 0, 0, 1, 1, 1, None, 2], {0: True, 1: False, 2: False}),
             Problem("set", [0, 1] * 5, {0: False, 1: True})]
    result = replay(mixed, (0.999999,), orders=50, progress=False)["benchmarks"]["set"]["by_confidence"]["0.999999"]
    assert result["mean_samples"] == 10 and result["share_of_n"] == 1.0 and result["agreement"] == 1.0
    assert result["accuracy_adaptive"] == result["accuracy_full"]
    assert first_leader([None, 2, 1, 1, 2]) == 2 and first_leader([None]) is None

    run = write_run(tmp_path / "run", {"a": ["1"] * 8, "b": ["1", "2"] * 4})
    markdown, out = run_replay(run, confidences=(0.8, 0.95), orders=40, progress=False)
    assert out == run / "replay"
    saved = json.loads((out / "replay.json").read_text())
    assert saved["benchmarks"]["set"]["problems"] == 2 and saved["benchmarks"]["set"]["n"] == 8
    assert "| set | 2 | 8 | 0.95 |" in markdown
    assert (out / "replay.png").stat().st_size > 10_000 and (out / "replay.md").read_text() == markdown


def test_replay_cli_errors_are_one_line(tmp_path: Path, capsys):
    single = write_run(tmp_path / "single", {"a": ["1"]})
    assert main(["replay", str(single), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no problem has two or more samples" in err
    with pytest.raises(SystemExit):
        main(["replay", str(single), "--confidence", "1.0"])
    assert "strictly between 0 and 1" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_more_to_settle():
    assert more_to_settle([], 0.95) == 4 and more_to_settle([3], 0.95) == 1
    assert more_to_settle([3, 1], 0.95) == 3  # (6, 1): 247/256 >= 0.95 > (5, 1) = 120/128


def test_adaptive_run_keeps_maj_and_refuses_avg_and_pass(tmp_path: Path, luffy_data: Path, tiny_sampler, capsys):
    """Greedy samples all agree, so each problem's vote settles after 4 of its 8 samples (0.95); the records
    say they come from an adaptive vote, and the full report (avg@k, pass@k) refuses them in one line."""
    options = RunOptions(model="tiny", backend="vllm", benchmarks=["aime24"], out=tmp_path, progress=False,
                         sampling=Sampling(temperature=0.0, top_p=1.0, max_tokens=48), grading_workers=1,
                         data=[luffy_data / "valid.all.parquet"], limit=2, n={"aime24": 8})
    markdown = run_adaptive(options, lambda: tiny_sampler, confidence=0.95)
    records = read_records(tmp_path)
    assert sorted((r["problem"], r["sample"]) for r in records) == [(p, i) for p in ("0", "1") for i in range(4)]
    assert all(r["vote"] == {"mode": "adaptive", "confidence": 0.95} for r in records)
    assert "| AIME 24 | 2 | 8 | 4.00 | 50.0 % |" in markdown
    assert json.loads((tmp_path / "vote.json").read_text())["aime24"]["mean_samples"] == 4

    def no_engine():
        raise AssertionError("every vote is settled: no sampler may be created")

    run_adaptive(options, no_engine, confidence=0.95)  # resumes: nothing left to draw
    capsys.readouterr()
    with pytest.raises(HarnessError, match="adaptive vote.*avg@k and pass@k"):
        report.build(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "vote.md" in err


def test_vote_options_are_checked_in_one_line(tmp_path: Path, capsys):
    base = ["run", "--model", "m", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--out",
            str(tmp_path / "out")]
    assert main([*base, "--vote-wave", "3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --vote-wave is for --vote adaptive"
    with pytest.raises(SystemExit):
        main([*base, "--vote", "adaptive", "--vote-confidence", "1"])
    assert "strictly between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
