"""luffy-serve processes for tests and benchmarks: start one on a free port and wait until it is healthy, stop it.

Processes run from the checkout's root (``REPO``), so that ``python -m luffy_serve`` imports this tree's code.
Nothing here imports luffy_serve: the server is a subprocess, and the trainer's tests start it with the serving
environment's interpreter.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from luffy_util.processes import free_port, stop
from luffy_util.processes import launch as _launch

REPO = Path(__file__).resolve().parents[1]  # the checkout: the processes' working directory

# luffy_util's launcher, run from REPO.
launch = functools.partial(_launch, cwd=REPO)

API_KEY = "test-key"


@dataclass
class Server:
    base_url: str  # e.g. http://127.0.0.1:PORT (no /v1)
    api_key: str
    model: str  # the served model name
    process: subprocess.Popen
    log_path: Path
    statuses_while_starting: set[int]  # what /health answered before it first said 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(model_dir: Path, log_path: Path, extra_args: list[str] | None = None, api_key: str = API_KEY,
                 timeout: float = 600, python: str = sys.executable, env: dict[str, str] | None = None) -> Server:
    """Start ``luffy-serve`` on a free port and wait until /health answers 200 (``python``: the interpreter of
    the serving environment, for tests that run in the trainer's; ``env``: variables to add)."""
    port = free_port()
    cmd = [python, "-m", "luffy_serve", "--model", str(model_dir), "--host", "127.0.0.1",
           "--port", str(port), "--api-key", api_key, "--served-model-name", "tiny",
           "--max-model-len", "1024", *(extra_args or [])]
    base_url = f"http://127.0.0.1:{port}"
    seen: set[int] = set()
    proc = launch(cmd, f"{base_url}/health", log_path, timeout, seen=seen, env={**os.environ, **(env or {})})
    return Server(base_url, api_key, "tiny", proc, log_path, seen)


def stop_server(server: Server) -> None:
    stop(server.process)


def openai_client_of(server: Server):
    """The official openai client for ``server`` (no retries: a test sees the first answer)."""
    import openai

    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)


def metric(server: Server, name: str) -> float:
    """Sum of a Prometheus metric's samples (all label sets) from the server's /metrics."""
    import httpx

    total, found = 0.0, False
    for line in httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {server.api_key}"}
                          ).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} not in /metrics"
    return total
