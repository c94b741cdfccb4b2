"""luffy-serve under a supervisor: a dead engine ends the server (non-zero, at once, nothing left behind), and
SIGTERM drains what is in flight and exits 0. Each test kills or stops its own server (real vLLM engine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import openai
import psutil
import pytest

from luffy_testing.servers import Server, start_server, stop_server

STREAMS = 4


class Streams:
    """Chat streams in threads through the official client; each ends as "done" (a finish reason, then the
    stream's end), "error" (the OpenAI error event: the client raises APIError) or "cut" (the connection)."""

    def __init__(self, server: Server, max_tokens: int):
        self.client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0,
                                    timeout=120)
        self.model, self.max_tokens = server.model, max_tokens
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
                max_tokens=self.max_tokens, extra_body={"ignore_eos": True, "gold": "42"})
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


@pytest.fixture
def own_server(tiny_model_dir: Path, tmp_path: Path):
    server = start_server(tiny_model_dir, tmp_path / "luffy-serve.log")
    yield server
    stop_server(server)


def test_a_dead_engine_ends_the_server_with_its_streams_and_workers(own_server: Server) -> None:
    import httpx

    # The luffy_exact grading host (on .venv-exact) is running too, and must stop with the server.
    grade = httpx.post(f"{own_server.base_url}/v1/grade", headers={"Authorization": f"Bearer {own_server.api_key}"},
                       json={"answers": ["42"], "gold": "42", "mode": "luffy_exact"}, timeout=180)
    assert grade.status_code == 200 and grade.json()["grades"][0]["correct"]
    tree = psutil.Process(own_server.process.pid).children(recursive=True)
    assert any("luffy_math.workers.host" in " ".join(p.cmdline()) for p in tree)
    core = next(p for p in tree if "EngineCore" in p.name())

    streams = Streams(own_server, max_tokens=900)
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


def test_sigterm_drains_the_streams_refuses_new_connections_and_exits_0(own_server: Server) -> None:
    streams = Streams(own_server, max_tokens=900)
    streams.wait_for_chunks(2)
    own_server.process.send_signal(signal.SIGTERM)
    in_flight = streams.ended.count(None)
    time.sleep(0.5)
    url = urlparse(own_server.base_url)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((url.hostname, url.port), timeout=5).close()
    code = own_server.process.wait(timeout=120)
    assert in_flight >= 1 and streams.join(timeout=10) == ["done"] * STREAMS
    assert code == 0
    assert wait_empty(own_server.process.pid) == []
    assert "the vLLM engine died" not in own_server.log()
