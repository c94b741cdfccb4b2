"""``python -m app.viewer`` as a user starts it: once it listens it prints its URL and the run directories it
reads, on stdout, and the URL answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from viewer_runs import write_runs

from luffy_testing.servers import REPO
from luffy_util.processes import free_port, status_of, stop


def test_the_viewer_prints_its_url_and_the_runs_it_reads(tmp_path: Path) -> None:
    runs = write_runs(tmp_path)
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "app.viewer", *map(str, runs), "--port", str(port)],
                                stdout=stdout, stderr=stderr, cwd=REPO, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while status_of(url) != 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        grace = time.monotonic() + 5  # it listens: the lines follow at once
        while out.read_text().count("reading") < 2 and time.monotonic() < grace:
            time.sleep(0.1)
        printed = out.read_text().splitlines()
        assert printed[:3] == [f"LUFFY results viewer at {url} (Ctrl-C stops it)",
                               f"  reading {runs[0].resolve()}", f"  reading {runs[1].resolve()}"], err.read_text()
    finally:
        stop(proc, timeout=30)
