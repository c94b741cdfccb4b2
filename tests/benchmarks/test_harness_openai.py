"""The endpoint backend against the session's luffy-serve (real HTTP, official openai client), and a run
killed with SIGKILL mid-way, then resumed: nothing finished is lost, nothing is generated twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.problems import HarnessError
from benchmarks.runner import RunOptions, run
from benchmarks.samplers.base import Sampling
from benchmarks.samplers.openai_sampler import OpenAISampler
from benchmarks.store import read_records

REPO = Path(__file__).resolve().parents[2]


def taught_data(path: Path, count: int = 2) -> Path:
    path.write_text("".join(json.dumps({"problem": f"What is {i} + {42 - i}?", "answer": "42"}) + "\n"
                            for i in range(count)))
    return path


def test_chat_and_completion_templates_through_luffy_serve(tmp_path: Path, luffy_server) -> None:
    data = taught_data(tmp_path / "taught.jsonl")
    sampler = OpenAISampler(luffy_server.base_url, luffy_server.api_key, luffy_server.model, concurrency=4)
    for template in ("own", "none"):
        out = tmp_path / template
        run(RunOptions(model="tiny", backend="openai", benchmarks=["taught"], out=out, data=[data],
                       n={"taught": 2}, sampling=Sampling(max_tokens=48, template=template), progress=False,
                       grading_workers=1), lambda: sampler)
        records = read_records(out)
        assert len(records) == 4
        for r in records:
            assert r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 48
            assert r["finish_reason"] in ("stop", "length") and r["grades"]["luffy"] is not None
        if template == "own":  # chat: the server rendered the template and split off the reasoning
            assert all(r["rendered_prompt"] is None for r in records)
            assert any("</think>" in r["response"] for r in records)  # reasoning_content joined back
        else:
            assert records[0]["rendered_prompt"].startswith("Please reason step by step")


def test_endpoint_errors_are_one_line(tmp_path: Path, luffy_server) -> None:
    data = taught_data(tmp_path / "taught.jsonl", 1)
    opts = RunOptions(model="no-such-model", backend="openai", benchmarks=["taught"], out=tmp_path / "out",
                      data=[data], sampling=Sampling(max_tokens=8), progress=False, grading_workers=1)
    wrong_model = OpenAISampler(luffy_server.base_url, luffy_server.api_key, "no-such-model", max_retries=0)
    with pytest.raises(HarnessError, match=r"answered 404") as error:
        run(opts, lambda: wrong_model)
    assert "\n" not in str(error.value)
    unreachable = OpenAISampler("http://127.0.0.1:9", "k", "tiny", max_retries=1, timeout=5)
    with pytest.raises(HarnessError, match="cannot reach http://127.0.0.1:9/v1"):
        run(opts, lambda: unreachable)


def test_kill_9_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path: Path, luffy_server, capsys) -> None:
    # Records land once graded, and the first grading waits for its worker to start: enough problems that
    # generation outlasts that start, so the kill comes mid-run on a fast machine too.
    problems = 48
    data = taught_data(tmp_path / "taught.jsonl", problems)
    out = tmp_path / "out"
    args = ["run", "--backend", "openai", "--base-url", luffy_server.base_url, "--api-key", luffy_server.api_key,
            "--model", luffy_server.model, "--data", str(data), "--benchmarks", "taught", "--n", "8",
            "--max-tokens", "32", "--concurrency", "1", "--grading-workers", "1", "--out", str(out), "--no-progress"]
    gen = out / "generations.seed0.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if gen.exists() and gen.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its grading workers, as `kill -9` on the group
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    survived = gen.read_bytes()
    finished = survived[: survived.rfind(b"\n") + 1].decode().splitlines()
    assert 3 <= len(finished) < problems * 8

    assert main(args) == 0
    capsys.readouterr()
    lines = gen.read_text().splitlines()
    assert lines[: len(finished)] == finished  # what was stored before the kill is kept as it was
    keys = [(r["problem"], r["sample"]) for r in map(json.loads, lines)]
    assert sorted(keys) == sorted((str(p), s) for p in range(problems) for s in range(8))  # whole, no duplicates


def _kill_tree(pid: int) -> None:
    """SIGKILL a server and every process under it (its vLLM engine core): the node is gone."""
    import psutil

    root = psutil.Process(pid)
    for process in [*root.children(recursive=True), root]:
        process.kill()


def test_an_endpoint_that_is_down_is_left_out(tmp_path: Path, luffy_server) -> None:
    data = taught_data(tmp_path / "taught.jsonl", 2)
    sampler = OpenAISampler(["http://127.0.0.1:9", luffy_server.base_url], luffy_server.api_key, luffy_server.model,
                            concurrency=2, max_retries=1)
    out = tmp_path / "out"
    run(RunOptions(model="tiny", backend="openai", benchmarks=["taught"], out=out, data=[data], n={"taught": 3},
                   sampling=Sampling(max_tokens=16), progress=False, grading_workers=1), lambda: sampler)
    records = read_records(out)
    assert sorted((r["problem"], r["sample"]) for r in records) == [(str(p), s) for p in range(2) for s in range(3)]
    assert {r["endpoint"] for r in records} == {luffy_server.base_url + "/v1"}
    assert sampler.served() == {"http://127.0.0.1:9/v1": 0, luffy_server.base_url + "/v1": 6}


def test_two_endpoints_one_killed_mid_run_every_sample_once(tmp_path: Path, luffy_server, qwen_model_dir,
                                                            capsys) -> None:
    """Two luffy-serve processes; one (with its engine) is SIGKILLed while it has samples in flight: they go
    to the other, the run completes with every (problem, sample) exactly once, and the report says who
    answered what."""
    from luffy_testing.servers import start_server, stop_server

    doomed = start_server(qwen_model_dir, tmp_path / "doomed.log", api_key=luffy_server.api_key)
    try:
        data = taught_data(tmp_path / "taught.jsonl", 4)
        out = tmp_path / "out"
        args = ["run", "--backend", "openai", "--base-url", doomed.base_url, "--base-url", luffy_server.base_url,
                "--api-key", luffy_server.api_key, "--model", luffy_server.model, "--data", str(data),
                "--benchmarks", "taught", "--n", "8", "--max-tokens", "48", "--concurrency", "2",
                "--max-retries", "1", "--grading-workers", "1", "--out", str(out), "--no-progress"]
        gen = out / "generations.seed0.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks", *args], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            stored = gen.read_text().splitlines() if gen.exists() else []
            if any(json.loads(line).get("endpoint") == doomed.base_url + "/v1" for line in stored[:-1]):
                break  # the doomed server has answered, and has more in flight
            time.sleep(0.02)
        _kill_tree(doomed.process.pid)
        _, errors = proc.communicate(timeout=600)
        assert proc.returncode == 0, errors
    finally:
        stop_server(doomed)
    records = read_records(out)
    keys = [(r["problem"], r["sample"]) for r in records]
    assert sorted(keys) == sorted((str(p), s) for p in range(4) for s in range(8))  # complete, no duplicates
    served = {url: sum(r["endpoint"] == url for r in records) for url in {r["endpoint"] for r in records}}
    assert served[doomed.base_url + "/v1"] >= 1 and served[luffy_server.base_url + "/v1"] >= 1
    report = (out / "report.md").read_text()
    assert "Endpoints (samples each answered)" in report
    for url, count in served.items():
        assert f"{url} ({count})" in report
