"""``python -m benchmarks run | score | report`` under bad input: exit 2, one error line, nothing written, no engine.

Each command runs through the harness's ``main`` in this process, with tripwires on vLLM and torch
(tests/cli_errors.py): a refusal that reached the engine would import them. One runs as a subprocess, as a user
runs it, so that what ``python -m benchmarks`` imports on its way in is checked too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_errors import call_main, refusal, run_cli, tripped

from benchmarks.cli import main

ENGINE = ("vllm", "torch")


def problems_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"problem": "What is 1+1?", "answer": "2"}) + "\n")
    return path


def checkpoint_dir(tmp_path: Path) -> Path:
    """A directory that passes the model check (config.json); the tripwires stop anything that would load it."""
    path = tmp_path / "ckpt"
    path.mkdir(exist_ok=True)
    if not (path / "config.json").exists():
        (path / "config.json").write_text('{"model_type": "qwen2"}')
    return path


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return call_main(main, ["run", *args], tmp_path, forbid=ENGINE)


def run_args(tmp_path: Path, **changes: str | None) -> list[str]:
    """A valid offline run of one local benchmark, with flags changed (None drops the flag)."""
    flags = {"--model": str(checkpoint_dir(tmp_path)), "--data": str(problems_file(tmp_path)),
             "--benchmarks": "mine", "--out": str(tmp_path / "out"), "--no-progress": "", **changes}
    return [part for flag, value in flags.items() if value is not None
            for part in ([flag, value] if value else [flag])]


# (flag, value, what the one error line says)
BAD_FLAGS = [
    ("--temperature", "-1", "argument --temperature: must be 0 or more, got -1"),
    ("--temperature", "nan", "argument --temperature: expected a finite number"),
    ("--top-p", "0", "argument --top-p: must be more than 0 and at most 1, got 0"),
    ("--top-p", "1.5", "argument --top-p: must be more than 0 and at most 1, got 1.5"),
    ("--max-tokens", "0", "argument --max-tokens: must be at least 1, got 0"),
    ("--n", "-3", "argument --n: must be at least 1, got -3"),
    ("--n", "mine=0", "argument --n: must be at least 1, got 0"),
    ("--n", "mine=x", "argument --n: expected an integer, got 'x'"),
    ("--n", "=4", "argument --n: expected N or NAME=N"),
    ("--seed", "-1", "argument --seed: a seed must be between 0 and 4294967295, got -1"),
    ("--seed", "1.5", "argument --seed: expected an integer"),
    ("--limit", "0", "argument --limit: must be at least 1, got 0"),
    ("--grading-workers", "0", "argument --grading-workers: must be at least 1"),
    ("--concurrency", "0", "argument --concurrency: must be at least 1"),
    ("--max-retries", "-1", "argument --max-retries: must be 0 or more"),
    ("--request-timeout", "0", "argument --request-timeout: must be more than 0"),
    ("--base-url", "localhost:8000", "argument --base-url: expected http://HOST[:PORT][/PATH]"),
    ("--base-url", "http://127.0.0.1:99999", "argument --base-url: not a URL (Port out of range"),
]


@pytest.mark.parametrize(("flag", "value", "message"), BAD_FLAGS, ids=[f"{f}={v}" for f, v, _ in BAD_FLAGS])
def test_bad_flag_value(tmp_path: Path, flag: str, value: str, message: str) -> None:
    line = refusal(run(tmp_path, *run_args(tmp_path, **{flag: value})), tmp_path)
    assert line.startswith("python -m benchmarks run: error: ") and message in line
    assert not (tmp_path / "out").exists()


def test_data_that_is_not_parquet_is_refused_while_parsing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("problem,answer\n1+1,2\n")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--data": str(junk)})), tmp_path)
    assert f"argument --data: {junk}: not a parquet file (Parquet magic bytes not found" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "message"), [
    ("missing.jsonl", "missing.jsonl: no such file"),
    (".", ": not a file"),
    ("problems.csv", "problems.csv: expected a .parquet or .jsonl file"),
], ids=["missing", "directory", "csv"])
def test_data_path_of_the_wrong_kind(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "problems.csv").write_text("1+1,2\n")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--data": str(tmp_path / name)})), tmp_path)
    assert "argument --data: " in line and line.endswith(message)
    assert not (tmp_path / "out").exists()


def test_data_that_fails_mid_read_writes_nothing(tmp_path: Path) -> None:
    """Only reading the whole file finds a bad second line: still one line, exit 2, before the engine and store.
    As a user runs it: ``python -m benchmarks`` in a fresh interpreter."""
    data = tmp_path / "torn.jsonl"
    data.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + '\n{"problem": "2+2?", "answer": \n')
    args = ["run", *run_args(tmp_path, **{"--data": str(data), "--benchmarks": "torn"})]
    line = refusal(run_cli("benchmarks", args, tmp_path, forbid=ENGINE), tmp_path)
    assert line.startswith(f"error: --data {data}:2: not a JSON record")
    assert not (tmp_path / "out").exists()


def test_data_rows_that_are_not_problems(tmp_path: Path) -> None:
    data = tmp_path / "numbers.jsonl"
    data.write_text(json.dumps({"problem": 7, "answer": "2"}) + "\n")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--data": str(data), "--benchmarks": "numbers"})), tmp_path)
    assert line == f"error: --data {data}: row 0 has no problem text"
    luffy_like = tmp_path / "luffy.jsonl"
    luffy_like.write_text(json.dumps({"data_source": "aime", "prompt": "not messages", "reward_model": {}}) + "\n")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--data": str(luffy_like), "--benchmarks": "aime24"})),
                   tmp_path)
    assert line.startswith(f"error: --data {luffy_like}: row 0 is not a LUFFY row")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("model", "message"), [
    ("{tmp}/no-such-model", "no such checkpoint directory, and not a hub id (org/name)"),
    ("{tmp}", "a directory without config.json, not a model checkpoint"),
    ("{tmp}/mine.jsonl", "a file, not a model checkpoint directory or a hub id"),
], ids=["missing", "no-config", "file"])
def test_model_that_is_not_a_checkpoint(tmp_path: Path, model: str, message: str) -> None:
    args = run_args(tmp_path, **{"--model": model.format(tmp=tmp_path)})
    line = refusal(run(tmp_path, *args), tmp_path)
    assert line == f"error: --model {model.format(tmp=tmp_path)}: {message}"
    assert not (tmp_path / "out").exists()


def test_model_config_that_is_not_json(tmp_path: Path) -> None:
    ckpt = checkpoint_dir(tmp_path)
    (ckpt / "config.json").write_text("not json")
    line = refusal(run(tmp_path, *run_args(tmp_path)), tmp_path)
    assert line.startswith(f"error: --model {ckpt}/config.json: not a model config")
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--out": str(taken)})), tmp_path)
    assert line.endswith(f"argument --out: {taken}: exists and is not a directory")
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--out": str(taken / "sub")})), tmp_path)
    assert line.endswith(f"argument --out: {taken / 'sub'}: {taken} is not a directory")
    assert taken.read_text() == "mine"


def test_cross_flag_errors(tmp_path: Path) -> None:
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--benchmarks": " , "})), tmp_path)
    assert line == "error: --benchmarks names no benchmark"
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--backend": "openai"})), tmp_path)
    assert line == "error: --backend openai needs --base-url"
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--backend": "ray", "--base-url": "http://127.0.0.1:8000"})),
                   tmp_path)
    assert line == "error: --base-url is for --backend openai, not ray"
    line = refusal(run(tmp_path, *run_args(tmp_path, **{"--replicas": "2"})), tmp_path)
    assert line == "error: --replicas is for --backend ray"
    assert not (tmp_path / "out").exists()


def test_ray_backend_refuses_before_joining_a_cluster(tmp_path: Path) -> None:
    """Bad flags and a missing checkpoint are refused before Ray (a tripwire) is imported."""
    forbid = (*ENGINE, "ray")
    line = refusal(call_main(main, ["run", *run_args(tmp_path, **{"--backend": "ray", "--replicas": "0"})],
                             tmp_path, forbid=forbid), tmp_path)
    assert line.endswith("argument --replicas: must be at least 1, got 0")
    missing = tmp_path / "no-such-model"
    line = refusal(call_main(main, ["run", *run_args(tmp_path, **{"--backend": "ray", "--model": str(missing)})],
                             tmp_path, forbid=forbid), tmp_path)
    assert line == f"error: --model {missing}: no such checkpoint directory, and not a hub id (org/name)"
    assert not (tmp_path / "out").exists() and not tripped(tmp_path)


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "out-with-other-files"])
def test_run_that_fails_before_any_sample_leaves_no_run_behind(tmp_path: Path, existing: bool) -> None:
    """The endpoint is down: found only once the store is open. The run dir (or the files this run added) goes."""
    out = tmp_path / "runs" / "x"
    if existing:
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("kept")
    result = call_main(main, ["run", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--model", "m",
                              "--max-retries", "0", "--no-progress", "--data", str(problems_file(tmp_path)),
                              "--benchmarks", "mine", "--out", str(out)], tmp_path, forbid=("vllm",))
    assert result.returncode == 2 and "Traceback" not in result.stderr and not tripped(tmp_path), result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [result.stderr.splitlines()[-1]]
    assert errors[0].startswith("error: cannot reach http://127.0.0.1:9/v1")
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not (tmp_path / "runs").exists()


def score_or_report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return call_main(main, list(args), tmp_path, forbid=ENGINE)


@pytest.mark.parametrize("command", ["score", "report"])
def test_score_and_report_refuse_bad_paths_and_files(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "missing"
    line = refusal(score_or_report(tmp_path, command, str(missing)), tmp_path)
    assert line == f"error: {missing}: no such file or directory"

    empty_run = tmp_path / "empty"
    empty_run.mkdir()
    line = refusal(score_or_report(tmp_path, command, str(empty_run)), tmp_path)
    assert line == f"error: {empty_run}: no generations.seed*.jsonl files (run `python -m benchmarks run` first)"

    not_utf8 = tmp_path / "bytes.jsonl"
    not_utf8.write_bytes(b"\xff\xfe{}\n")
    line = refusal(score_or_report(tmp_path, command, str(not_utf8)), tmp_path)
    assert line.startswith(f"error: {not_utf8}: not a UTF-8 JSONL file")

    lacking = tmp_path / "lacking.jsonl"
    lacking.write_text(json.dumps({"benchmark": "mine"}) + "\n")
    line = refusal(score_or_report(tmp_path, command, str(lacking)), tmp_path)
    assert line.startswith(f"error: {lacking}: record 1 lacks problem, sample")

    not_objects = tmp_path / "lists.jsonl"
    not_objects.write_text("[1, 2]\n")
    line = refusal(score_or_report(tmp_path, command, str(not_objects)), tmp_path)
    assert line == f"error: {not_objects}:1: not a JSON object"
    assert not list(tmp_path.glob("report*")) and lacking.read_text() == json.dumps({"benchmark": "mine"}) + "\n"


def test_report_of_no_samples_writes_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "generations.seed0.jsonl").write_text("")
    line = refusal(score_or_report(tmp_path, "report", str(run_dir)), tmp_path)
    assert line == f"error: {run_dir}: no samples to report"
    assert sorted(p.name for p in run_dir.iterdir()) == ["generations.seed0.jsonl"]


def test_score_grading_workers(tmp_path: Path) -> None:
    line = refusal(score_or_report(tmp_path, "score", str(tmp_path), "--grading-workers", "0"), tmp_path)
    assert line.endswith("argument --grading-workers: must be at least 1, got 0")
