"""luffy-serve's life as a supervisor sees it, on a real engine (the tiny checkpoint):

- start-up: the port answers 503 (JSON, Retry-After) from its first answer until 200, never refusing a
  connection in between; the log before "ready" is luffy's own lines and no known noise;
- SIGTERM: what is in flight drains, new connections are refused, exit code 0, nothing left behind and nothing
  leaked in the log;
- a dead engine ends the server (non-zero, at once, its streams told, nothing left behind).

One server is watched from the moment its process starts until its SIGTERM exit (one engine load for both);
the dead-engine test kills an engine of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from luffy_serve.quiet_log import NOISE
from luffy_testing.servers import API_KEY, REPO, Server, start_server, stop_server
from luffy_util.processes import free_port, stop

# Lines that vLLM, torch and the interpreter print before "ready" or at a stop, none of them useful to a user.
KNOWN_NOISE = (*NOISE, "FutureWarning", "Triton", "NUMA binding", "nanobind", "resource_tracker", "Traceback")
STREAMS = 4


class Streams:
    """Chat streams in threads through the official client; each ends as "done" (a finish reason, then the
    stream's end), "error" (the OpenAI error event: the client raises APIError) or "cut" (the connection)."""

    def __init__(self, server: Server, max_tokens: int, n: int = 1):
        self.client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0,
                                    timeout=120)
        self.model, self.max_tokens, self.n = server.model, max_tokens, n
        self.chunks = [0] * STREAMS
        self.ended: list[str | None] = [None] * STREAMS
        self.threads = [threading.Thread(target=self._one, args=(i,), daemon=True) for i in range(STREAMS)]
        for thread in self.threads:
            thread.start()

    def _one(self, i: int) -> None:
        finish = None
        try:
            stream = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": f"What is {i} + {42 - i}?"}], stream=True,
                max_tokens=self.max_tokens, n=self.n, extra_body={"ignore_eos": True, "gold": "42"})
            for chunk in stream:
                self.chunks[i] += 1
                finish = next((c.finish_reason for c in chunk.choices if c.finish_reason), finish)
            self.ended[i] = "done" if finish else "no finish reason"
        except openai.APIConnectionError:
            self.ended[i] = "cut"
        except openai.APIError as exc:
            self.ended[i] = f"error: {exc.message}"

    def wait_for_chunks(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while min(self.chunks) < count:
            assert time.monotonic() < deadline and all(e is None for e in self.ended), (self.chunks, self.ended)
            time.sleep(0.02)

    def join(self, timeout: float) -> list[str | None]:
        for thread in self.threads:
            thread.join(timeout)
        return self.ended


def session_left(sid: int) -> list[str]:
    """The processes of the server's session (it leads one: luffy_util.processes starts it so)."""
    left = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {process.name()}")
    return left


def wait_empty(sid: int, seconds: float = 3.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := session_left(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@dataclass
class Life:
    statuses: list[int] = field(default_factory=list)  # /health, polled from the process's start (0: refused)
    first: httpx.Response | None = None  # the first answer
    chat_while_loading: httpx.Response | None = None
    not_under_way: str | None = None  # why the streams were not all under way when SIGTERM was sent
    in_flight_at_sigterm: int = 0  # streams not yet ended when SIGTERM was sent
    refused_after_sigterm: bool = False  # a new connection, half a second after SIGTERM
    streams_ended: list[str | None] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)  # processes of the server's session after its exit
    log: str = ""
    exit_code: int | None = None


@pytest.fixture(scope="module")
def life(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Life:
    """A server watched from its process's start to 200, then sent SIGTERM with four streams in flight."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("life") / "luffy-serve.log"
    seen = Life()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "luffy_serve", "--model", str(tiny_model_dir),
                                 "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
                                 "--api-key", API_KEY, "--served-model-name", "tiny"],
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
                    seen.chat_while_loading = client.post(
                        f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                        json={"model": "tiny", "messages": [{"role": "user", "content": "1+1?"}]})
                if response.status_code == 200:
                    break
                time.sleep(0.05)
        assert seen.statuses and seen.statuses[-1] == 200, log_path.read_text(errors="replace")[-3000:]
        server = Server(base, API_KEY, "tiny", proc, log_path, statuses_while_starting=set(seen.statuses))
        streams = Streams(server, max_tokens=900)
        try:  # the role chunk and the first text (a busy server packs many tokens into one)
            streams.wait_for_chunks(2)
        except AssertionError as exc:  # the SIGTERM test's failure: the start-up tests stand without it
            seen.not_under_way = str(exc)
        proc.send_signal(signal.SIGTERM)
        seen.in_flight_at_sigterm = streams.ended.count(None)
        time.sleep(0.5)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            seen.refused_after_sigterm = True
        seen.exit_code = proc.wait(timeout=120)
        seen.streams_ended = streams.join(timeout=10)
        seen.left_behind = wait_empty(proc.pid)
    finally:
        stop(proc, timeout=0)
    seen.log = log_path.read_text(errors="replace")
    return seen


def test_the_port_answers_503_with_json_and_retry_after_until_200_and_never_refuses(life):
    answered = [s for s in life.statuses if s]
    assert answered[0] == 503 and answered[-1] == 200
    first = life.statuses.index(answered[0])
    assert 0 not in life.statuses[first:], "a connection was refused after the port first answered"
    assert life.first.headers["retry-after"].isdigit()
    error = life.first.json()["error"]
    assert error["type"] == "ServiceUnavailableError" and error["code"] == 503
    assert "starting" in error["message"]
    chat = life.chat_while_loading  # every route answers so, not only /health
    assert chat.status_code in (200, 503)  # 200 only if the model was ready by then
    if chat.status_code == 503:
        assert chat.headers["retry-after"] and chat.json()["error"]["type"] == "ServiceUnavailableError"


def test_the_log_before_ready_is_luffys_lines_without_the_known_noise(life):
    lines = life.log.splitlines()
    ready = next(i for i, line in enumerate(lines) if "luffy-serve ready on http://127.0.0.1:" in line)
    before = [line for line in lines[:ready] if line.strip()]
    noisy = [line for line in before if any(noise in line for noise in KNOWN_NOISE)]
    assert noisy == []
    assert any("Importing vLLM" in line for line in before)
    assert any("Reasoning split: vLLM's parser 'deepseek_r1'" in line for line in before)
    assert any("KV cache:" in line for line in lines[:ready + 1])


def test_sigterm_drains_the_streams_refuses_new_connections_and_exits_0(life):
    assert life.not_under_way is None, life.not_under_way
    assert life.in_flight_at_sigterm >= 1 and life.streams_ended == ["done"] * STREAMS
    assert life.refused_after_sigterm
    assert life.exit_code == 0
    assert life.left_behind == []
    assert "the vLLM engine died" not in life.log


def test_a_clean_stop_exits_0_and_leaks_nothing_into_the_log(life):
    assert life.exit_code == 0
    assert not [line for line in life.log.splitlines()
                if "nanobind" in line or "resource_tracker" in line or "leaked" in line]


@pytest.fixture
def own_server(tiny_model_dir: Path, tmp_path: Path):
    # The checkpoint's whole context (2048), so that the streams are still generating when the engine is killed
    # even on a busy machine, where a server packs many tokens into each chunk.
    server = start_server(tiny_model_dir, tmp_path / "luffy-serve.log", ["--max-model-len", "2048"])
    yield server
    stop_server(server)


def test_a_dead_engine_ends_the_server_with_its_streams_and_workers(own_server: Server) -> None:
    # The luffy_exact grading host (on .venv-exact) is running too, and must stop with the server.
    grade = httpx.post(f"{own_server.base_url}/v1/grade", headers={"Authorization": f"Bearer {own_server.api_key}"},
                       json={"answers": ["42"], "gold": "42", "mode": "luffy_exact"}, timeout=180)
    assert grade.status_code == 200 and grade.json()["grades"][0]["correct"]
    tree = psutil.Process(own_server.process.pid).children(recursive=True)
    assert any("luffy_math.workers.host" in " ".join(p.cmdline()) for p in tree)
    core = next(p for p in tree if "EngineCore" in p.name())

    # 4 x 8 choices of 1900 tokens: tens of seconds of engine work, so the engine is still generating when it is
    # killed, however far the streams' delivery lags behind it on a busy machine.
    streams = Streams(own_server, max_tokens=1900, n=8)
    streams.wait_for_chunks(2)  # the role chunk and the first text (a busy server packs many tokens into one)
    core.kill()
    killed = time.monotonic()
    code = own_server.process.wait(timeout=30)
    took = time.monotonic() - killed

    ended = streams.join(timeout=10)
    assert all(e is not None and e.startswith("error: EngineCore") for e in ended), ended
    assert code == 1, own_server.log()[-3000:]
    assert took < 10, f"exited {took:.1f} s after the engine died"  # about 3.5 s measured (perf/fault_bench.py)
    assert wait_empty(own_server.process.pid) == []
    assert own_server.log().count("the vLLM engine died") == 1
