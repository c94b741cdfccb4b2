"""luffy-serve's start-up on a real engine: the port answers 503 (JSON, Retry-After) from its first answer until
200, never refusing a connection in between; the log before "ready" is luffy's own lines and no known noise;
a clean stop leaves nothing leaked in the log.

One fresh server (the tiny checkpoint), watched from the moment its process starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import pytest

from luffy_serve.quiet_log import NOISE
from luffy_testing.servers import REPO
from luffy_util.processes import free_port, stop

# Lines that used to fill the log before "ready" or at a stop, none of them useful to a user.
KNOWN_NOISE = (*NOISE, "FutureWarning", "Triton", "NUMA binding", "nanobind", "resource_tracker", "Traceback")


@dataclass
class Start:
    statuses: list[int] = field(default_factory=list)  # /health, polled from the process's start (0: refused)
    first: httpx.Response | None = None  # the first answer
    chat_while_loading: httpx.Response | None = None
    log: str = ""
    exit_code: int | None = None


@pytest.fixture(scope="module")
def start(tiny_model_dir, tmp_path_factory) -> Start:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("startup") / "luffy-serve.log"
    seen = Start()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "luffy_serve", "--model", str(tiny_model_dir),
                                 "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 600
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    response = client.get(f"{base}/health")
                except httpx.TransportError:
                    seen.statuses.append(0)
                    time.sleep(0.05)
                    continue
                seen.statuses.append(response.status_code)
                if seen.first is None:
                    seen.first = response
                    seen.chat_while_loading = client.post(f"{base}/v1/chat/completions", json={
                        "model": "tiny", "messages": [{"role": "user", "content": "1+1?"}]})
                if response.status_code == 200:
                    break
                time.sleep(0.05)
        assert seen.statuses and seen.statuses[-1] == 200, log_path.read_text(errors="replace")[-3000:]
        proc.send_signal(signal.SIGTERM)
        seen.exit_code = proc.wait(timeout=120)
    finally:
        stop(proc, timeout=0)
    seen.log = log_path.read_text(errors="replace")
    return seen


def test_the_port_answers_503_with_json_and_retry_after_until_200_and_never_refuses(start):
    answered = [s for s in start.statuses if s]
    assert answered[0] == 503 and answered[-1] == 200
    first = start.statuses.index(answered[0])
    assert 0 not in start.statuses[first:], "a connection was refused after the port first answered"
    assert start.first.headers["retry-after"].isdigit()
    error = start.first.json()["error"]
    assert error["type"] == "ServiceUnavailableError" and error["code"] == 503
    assert "starting" in error["message"]
    chat = start.chat_while_loading  # every route answers so, not only /health
    assert chat.status_code in (200, 503)  # 200 only if the model was ready by then
    if chat.status_code == 503:
        assert chat.headers["retry-after"] and chat.json()["error"]["type"] == "ServiceUnavailableError"


def test_the_log_before_ready_is_luffys_lines_without_the_known_noise(start):
    lines = start.log.splitlines()
    ready = next(i for i, line in enumerate(lines) if "luffy-serve ready on http://127.0.0.1:" in line)
    before = [line for line in lines[:ready] if line.strip()]
    noisy = [line for line in before if any(noise in line for noise in KNOWN_NOISE)]
    assert noisy == []
    assert any("Importing vLLM" in line for line in before)
    assert any("Reasoning split: vLLM's parser 'deepseek_r1'" in line for line in before)
    assert any("KV cache:" in line for line in lines[:ready + 1])


def test_a_clean_stop_exits_0_and_leaks_nothing_into_the_log(start):
    assert start.exit_code == 0
    stop_lines = start.log.splitlines()
    assert not [line for line in stop_lines if "nanobind" in line or "resource_tracker" in line or "leaked" in line]
