"""Problem sources: LUFFY's parquet (from ../shared), plain local files, and the hub loaders' row mapping.

The hub cannot be reached here, so the hub loaders' row mapping is checked on hand-made rows shaped like each
dataset's columns (a stand-in for the hub only), and offline use must fail with one clear line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.problems import HarnessError
from benchmarks.sources import load_problems
from benchmarks.tasks import BENCHMARKS, arc_c, gpqa, math500, minerva, olympiad
from benchmarks.tasks.hub import problem_answer_rows


def test_luffy_parquet_repeats_become_samples_of_one_problem(luffy_data: Path) -> None:
    loaded = load_problems(["aime24", "amc", "math500", "minerva", "olympiad", "aime25"],
                           [luffy_data / "valid.all.parquet"])
    sizes = {name: (len(problems), {p.n for p in problems}) for name, (problems, _) in loaded.items()}
    assert sizes == {"aime24": (30, {32}), "amc": (83, {32}), "math500": (500, {1}), "minerva": (272, {1}),
                     "olympiad": (675, {1}), "aime25": (30, {32})}
    first = loaded["amc"][0][0]
    assert first.gold == "142.0" and first.problem_id == "0"
    assert "systematic" not in first.prompt  # the system message is dropped
    assert loaded["math500"][1] == "valid.all.parquet [math500]"


def test_ood_parquets(luffy_data: Path) -> None:
    loaded = load_problems(["gpqa", "arc_c"], [luffy_data / "valid.gpqa.parquet", luffy_data / "valid.arc_c.parquet"])
    assert [len(p) for p, _ in loaded.values()] == [198, 1172]
    assert loaded["gpqa"][0][0].gold == "A"


def test_missing_benchmark_in_data_is_a_clear_error(luffy_data: Path) -> None:
    with pytest.raises(HarnessError, match="--data has no gpqa"):
        load_problems(["gpqa"], [luffy_data / "valid.all.parquet"])


def test_plain_jsonl_uses_file_stem_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"problem": "1+1?", "answer": 2}) + "\n" + json.dumps(
        {"problem": "roots?", "answer": ["1", "-1"], "id": "r"}) + "\n")
    (problems, _), = load_problems(["mine"], [path]).values()
    assert [(p.problem_id, p.gold, p.n) for p in problems] == [("0", "2", None), ("r", ["1", "-1"], None)]


def test_hub_row_mapping_on_hand_made_rows() -> None:
    assert problem_answer_rows("amc", [{"id": 0, "problem": "P", "answer": 142.0}])[0].gold == "142.0"
    assert math500.to_problems([{"problem": "P", "answer": "\\frac12", "unique_id": "u"}])[0].problem_id == "u"
    assert minerva.to_problems([{"problem": "P", "solution": "so $\\boxed{4.5e33}$"}])[0].gold == "4.5e33"
    assert olympiad.to_problems([{"id": 7, "question": "Q", "final_answer": ["$3$", "x"]}])[0].gold == "$3$"
    arc = arc_c.to_problems([{"id": "a", "question": "Q?", "choices": {"text": ["x", "y"], "label": ["1", "2"]},
                              "answerKey": "2"}])[0]
    assert arc.prompt == "Q?\n\n1) x\n2) y\n" and arc.gold == "2"
    row = {"Question": "Q?", "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
           "Incorrect Answer 3": "w3"}
    g = gpqa.to_problems([row, row])
    for problem in g:  # the gold letter follows the correct option wherever the shuffle put it
        assert f"{problem.gold}) right" in problem.prompt and problem.prompt.startswith(gpqa.INSTRUCTION)
    assert g == gpqa.to_problems([row, row])  # reproducible shuffle
    assert set(BENCHMARKS) == {"aime24", "aime25", "amc", "math500", "minerva", "olympiad", "arc_c", "gpqa",
                               "mmlu_pro"}


def test_offline_without_data_is_one_line_and_nonzero(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--model", "m", "--benchmarks", "math500",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "cannot load HuggingFaceH4/MATH-500" in done.stderr and "--data" in done.stderr
    assert not (tmp_path / "out").exists()
