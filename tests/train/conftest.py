"""The verl run the verl tests share (it takes minutes): `luffy-tiny-cpu` through verl's RayPPOTrainer for
three steps with a checkpoint each, stopped and killed on the way, as preemption does:

1. SIGTERM during step 2: the trainer finishes the step, saves it, logs it, exits 0;
2. the same command resumes after step 2 and is SIGKILLed (its whole session) during step 3;
3. the same command resumes after step 2 again and finishes step 3.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERL_STEPS = 3


def session_pids(sid: int) -> list[int]:
    """The processes of session ``sid`` (the run's CLI, Ray's processes, vLLM's, ...) still alive."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def left_after(sid: int, grace: float) -> list[int]:
    """The session's processes still alive ``grace`` seconds on (Ray's workers go shortly after its driver)."""
    deadline = time.monotonic() + grace
    while (pids := session_pids(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pids


def kill_session(sid: int, timeout: float = 60) -> None:
    """SIGKILL every process of the session (a node lost, a container killed) and wait until none is left."""
    deadline = time.monotonic() + timeout
    while pids := session_pids(sid):
        assert time.monotonic() < deadline, f"processes of the killed run still alive: {pids}"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def wait_for_file(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path.name}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def verl_run(qwen_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_resume import QUESTIONS, write_data  # here, not at the top: only the verl tests need torch

    tmp = tmp_path_factory.mktemp("verl")
    data = write_data(tmp / "train.parquet", QUESTIONS)  # 6 prompts, in order: steps 1-3 take 2 each
    out = tmp / "run"
    overrides = [f"actor_rollout_ref.model.path={qwen_model_dir}", f"data.train_files={data}",
                 f"trainer.default_local_dir={out}", f"luffy.batch_dump_dir={out / 'batches'}",
                 f"trainer.total_training_steps={VERL_STEPS}", "trainer.total_epochs=1"]
    cmd = [sys.executable, "-m", "luffy_train", "--config", "luffy-tiny-cpu", *overrides]
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}  # the CLI chooses it from trainer.device
    logs = [tmp / f"run-{i}.log" for i in (1, 2, 3)]

    procs: list[subprocess.Popen] = []

    def start(log: Path) -> subprocess.Popen:
        procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True))
        return procs[-1]

    try:
        first = start(logs[0])
        wait_for_file(out / "batches" / "step_2.pt", first, logs[0])  # step 2 is updating the actor
        first.send_signal(signal.SIGTERM)
        sigterm_rc = first.wait(timeout=600)
        sigterm_left = left_after(first.pid, grace=30)
        kill_session(first.pid)
        after_sigterm = {"rc": sigterm_rc, "left": sigterm_left, "log": logs[0].read_text(),
                         "metrics": (out / "metrics.jsonl").read_text(),
                         "tracker": (out / "latest_checkpointed_iteration.txt").read_text()}
        second = start(logs[1])
        wait_for_file(out / "batches" / "step_3.pt", second, logs[1])  # step 3 is updating the actor
        kill_session(second.pid)
        second.wait()
        after_kill = {"log": logs[1].read_text(), "metrics": (out / "metrics.jsonl").read_text(),
                      "tracker": (out / "latest_checkpointed_iteration.txt").read_text()}
        third = start(logs[2])
        assert third.wait(timeout=1200) == 0, logs[2].read_text()[-4000:]
        kill_session(third.pid)
    finally:
        for proc in procs:
            kill_session(proc.pid)
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"out": out, "data": data, "steps": {s["step"]: s["data"] for s in steps},
            "logged_steps": [s["step"] for s in steps], "overrides": overrides, "model": qwen_model_dir,
            "after_sigterm": after_sigterm, "after_kill": after_kill, "resumed_log": logs[2].read_text()}
