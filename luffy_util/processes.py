"""Start a server the way a user would (a subprocess), wait until its URL answers, stop it with its children.

For test fixtures and benchmarks. Each process leads a process group of its own (a new session), so that
``stop`` also ends what it started (vLLM's engine core, grading workers) when the leader dies or hangs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

# Straight to the address asked: a proxy from the environment must not answer for a local server.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LaunchError(RuntimeError):
    """The process exited, or did not answer in time: ``summary`` says which, ``log_tail`` is the end of its log
    (the message is both)."""

    def __init__(self, summary: str, log_tail: str = ""):
        super().__init__(f"{summary}:\n{log_tail}" if log_tail else summary)
        self.summary = summary
        self.log_tail = log_tail


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def status_of(url: str, timeout: float = 2.0) -> int:
    """The HTTP status ``url`` answers a GET with; 0 when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):  # refused, reset, timed out, not HTTP
        return 0


def launch(cmd: Sequence[str], url: str, log_path: str | Path, timeout: float,
           env: Mapping[str, str] | None = None, seen: set[int] | None = None, cwd: str | Path | None = None,
           poll_s: float = 0.5) -> subprocess.Popen:
    """Run ``cmd`` with its output (stdout and stderr) in ``log_path``; return once ``url`` answers 200.

    Statuses other than 200 seen on the way (0 = no connection) are added to ``seen``. A process that exits,
    or does not answer within ``timeout`` seconds (then it is killed), raises :class:`LaunchError`.
    """
    log_path = Path(log_path)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=None if env is None else dict(env), start_new_session=True)
    name = " ".join(os.path.basename(str(part)) for part in cmd[:3])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _kill_group(proc)
            raise LaunchError(f"{name} exited with {proc.returncode}", tail(log_path))
        status = status_of(url)
        if status == 200:
            return proc
        if seen is not None:
            seen.add(status)
        time.sleep(poll_s)
    stop(proc, timeout=0)
    raise LaunchError(f"{name} did not answer {url} in {timeout:g}s", tail(log_path))


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the process, up to ``timeout`` seconds for it to exit, then SIGKILL; then SIGKILL to
    whatever is left of its process group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to the group ``proc`` leads (``launch`` made it a session leader), the leader included."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, signal.SIGKILL)


def tail(log_path: str | Path, chars: int = 5000) -> str:
    """The last ``chars`` characters of a log."""
    try:
        return Path(log_path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""
