"""Start a server the way a user would (a subprocess), wait until it answers, stop it: for test fixtures."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cmd: list[str], url: str, log_path: Path, timeout: float, env: dict[str, str] | None = None,
           seen: set[int] | None = None) -> subprocess.Popen:
    """Run ``cmd`` with its output in ``log_path``; return once ``url`` answers 200.

    Statuses other than 200 seen on the way (0 = no connection) are added to ``seen``. A process that exits,
    or does not answer within ``timeout``, raises with the tail of its log.
    """
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[2:4]} exited with {proc.returncode}:\n{tail(log_path)}")
        try:
            status = httpx.get(url, timeout=2).status_code
        except httpx.HTTPError:
            status = 0
        if status == 200:
            return proc
        if seen is not None:
            seen.add(status)
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{cmd[2:4]} did not answer {url} in {timeout}s:\n{tail(log_path)}")


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(log_path: Path, chars: int = 5000) -> str:
    return log_path.read_text(errors="replace")[-chars:]
