"""The in-process backend end to end: a real vLLM engine on the tiny checkpoint, real luffy_math grading."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.grading import graders_here
from benchmarks.problems import HarnessError
from benchmarks.runner import RunOptions, run, sample_seed
from benchmarks.samplers.base import SampleRequest, Sampling
from benchmarks.store import read_records

SMALL = Sampling(temperature=0.6, top_p=1.0, max_tokens=32)


def options(tmp: Path, data: list[Path], benchmarks: list[str], **kw) -> RunOptions:
    return RunOptions(model="tiny", backend="vllm", benchmarks=benchmarks, out=tmp, sampling=kw.pop("sampling", SMALL),
                      data=data, progress=False, grading_workers=1, **kw)


def test_luffy_subset_runs_resumes_and_refuses_a_changed_config(tmp_path: Path, luffy_data: Path, tiny_sampler):
    parquet = [luffy_data / "valid.all.parquet"]
    opts = options(tmp_path, parquet, ["aime24", "math500"], limit=2, n={"aime24": 3})
    markdown = run(opts, lambda: tiny_sampler)
    records = read_records(tmp_path)
    keys = sorted((r["benchmark"], r["problem"], r["sample"]) for r in records)
    assert keys == [("aime24", "0", 0), ("aime24", "0", 1), ("aime24", "0", 2), ("aime24", "1", 0),
                    ("aime24", "1", 1), ("aime24", "1", 2), ("math500", "0", 0), ("math500", "1", 0)]
    for r in records:
        assert r["rendered_prompt"].startswith("<|im_start|>user\n")  # own template, system message dropped
        assert r["rendered_prompt"].endswith("<|im_start|>assistant\n<think>\n")
        assert r["prompt_tokens"] > 10 and 0 < r["completion_tokens"] <= 32
        assert r["finish_reason"] in ("stop", "length")
        assert list(r["grades"]) == list(graders_here()) and all(r["grades"].values())
    assert "| Grader | AIME 24 | AIME 25 | AMC | MATH-500 | Minerva | Olympiad | Avg. |" in markdown
    for name in ("report.md", "report.json", "report.png"):
        assert (tmp_path / name).stat().st_size > 0

    before = (tmp_path / "generations.seed0.jsonl").read_bytes()

    def no_engine():
        raise AssertionError("nothing is missing, so no sampler may be created")

    run(opts, no_engine)
    assert (tmp_path / "generations.seed0.jsonl").read_bytes() == before

    with pytest.raises(HarnessError, match=r"temperature: 0\.6 -> 1\.0"):
        run(options(tmp_path, parquet, ["math500"], limit=2,
                    sampling=Sampling(temperature=1.0, top_p=1.0, max_tokens=32)), no_engine)
    assert (tmp_path / "generations.seed0.jsonl").read_bytes() == before

    run(options(tmp_path, parquet, ["math500"], limit=3), lambda: tiny_sampler)  # a larger --limit extends
    after = (tmp_path / "generations.seed0.jsonl").read_bytes()
    assert after.startswith(before)
    assert [(r["benchmark"], r["problem"]) for r in read_records(tmp_path)][len(keys):] == [("math500", "2")]


def test_stored_labels_are_luffy_math_labels_of_the_answer_part(tmp_path: Path, tiny_sampler) -> None:
    from luffy_math import answer_part
    from luffy_math.workers import grade_one

    data = tmp_path / "taught.jsonl"
    data.write_text("".join(json.dumps({"problem": q, "answer": "42"}) + "\n"
                            for q in ("What is 12 + 30?", "Solve x^2 = 1764.")))
    run(options(tmp_path / "run", [data], ["taught"], n={"taught": 3},
                sampling=Sampling(temperature=0.6, top_p=1.0, max_tokens=48)), lambda: tiny_sampler)
    result = json.loads((tmp_path / "run" / "report.json").read_text())["benchmarks"]["taught"]
    assert result["problems"] == 2 and result["samples_per_problem"] == 3
    records = read_records(tmp_path / "run")
    assert len(records) == 6
    for r in records:
        graded = answer_part(r["response"])
        for mode in graders_here():  # luffy_exact graded on .venv-exact, as the harness grades it
            assert r["grades"][mode] == asdict(grade_one(graded, "42", mode))
        assert r["extracted"] == r["grades"]["luffy"]["extracted"]
    labels = [r["grades"]["luffy"]["correct"] for r in records]
    assert result["luffy"]["avg"]["mean"] == pytest.approx(sum(labels) / 6)


def test_same_samples_as_plain_generate(tiny_sampler) -> None:
    """Queuing everything at once through the engine gives what LLM.generate gives for the same requests
    (greedy: on CPU the samples carry no per-request seed, see vllm_sampler.sampling_params)."""
    from vllm.inputs import TokensPrompt

    from benchmarks.samplers.vllm_sampler import sampling_params
    from benchmarks.templates import render_prompt

    greedy = Sampling(temperature=0.0, top_p=1.0, max_tokens=32)
    requests = [SampleRequest(("b", str(p), i), f"What is {p} + {p * 7}?", sample_seed(0, ("b", str(p), i)))
                for p in range(4) for i in range(2)]
    got: dict = {}
    tiny_sampler.generate(requests, greedy, lambda c: got.__setitem__(c.key, c.response))
    prompts = [TokensPrompt(prompt_token_ids=render_prompt(tiny_sampler.llm.get_tokenizer(), r.question, "own")[1]) for r in requests]
    params = [sampling_params(r.seed, greedy) for r in requests]
    plain = tiny_sampler.llm.generate(prompts, params, use_tqdm=False)
    assert [got[r.key] for r in requests] == [o.outputs[0].text for o in plain]


def test_compare_two_runs_of_luffys_parquet_against_the_card(tmp_path: Path, luffy_data: Path, tiny_sampler) -> None:
    """Two real runs (seeds 0 and 1) of the six math sets, compared with the CLI against the model card."""
    from cli_errors import run_cli

    parquet = [luffy_data / "valid.all.parquet"]
    for seed in (0, 1):
        run(options(tmp_path / f"seed{seed}", parquet, ["aime24", "aime25", "amc", "math500", "minerva", "olympiad"],
                    limit=2, n={"*": 2}, seed=seed), lambda: tiny_sampler)
    done = run_cli("benchmarks", ["compare", str(tmp_path / "seed0"), str(tmp_path / "seed1"), "--against",
                                  "card:luffy-qwen-math-1.5b-zero", "--out", str(tmp_path / "cmp")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| MATH-500 | 2 |" in done.stdout and "| Avg. (six math) |" in done.stdout
    assert "| LUFFY-1.5B-Zero (card) † | 15.2 | 12.7 | 46.8 | 79.4 | 26.5 | 42.4 | 42.1 |" in done.stdout
    assert "problems, run/published: AIME 24 2/30, AIME 25 2/30, AMC 2/83" in done.stdout  # a --limit 2 subset
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert set(result["differences"][0]["benchmarks"]) == {"aime24", "aime25", "amc", "math500", "minerva", "olympiad"}
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0


def test_progress_shows_each_benchmarks_running_accuracy_and_the_eta(tmp_path: Path, luffy_data: Path, tiny_sampler,
                                                                     capsys) -> None:
    import dataclasses
    import re

    opts = options(tmp_path, [luffy_data / "valid.all.parquet"], ["math500", "minerva"], limit=2, n={"*": 2})
    run(dataclasses.replace(opts, progress=True), lambda: tiny_sampler)
    err = capsys.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"samples: 100%.*8/8 \[\d\d:\d\d<00:00", final), final  # count, elapsed<remaining
    assert re.search(r"math500 \d+% of 4 · minerva \d+% of 4", final), final


def test_running_accuracy_reads_per_benchmark() -> None:
    from benchmarks.runner import running_accuracy

    assert running_accuracy({"aime24": [1, 4], "amc": [0, 2]}) == "aime24 25% of 4 · amc 0% of 2"
