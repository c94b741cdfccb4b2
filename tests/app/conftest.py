"""Fixtures for the demo's tests: a ``python -m app`` process and a headless Debian Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from luffy_testing.servers import launch
from luffy_util.processes import free_port, stop

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/setup.sh test); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class DemoProcess:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_demo(base_url: str, log_path: Path, api_key: str | None = None, timeout: float = 120) -> DemoProcess:
    """Run ``python -m app`` on a free port, as a user would, and wait until the page answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "app", "--base-url", base_url, "--port", str(port), "--max-tokens", "256"]
    if api_key:
        cmd += ["--api-key", api_key]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    url = f"http://127.0.0.1:{port}/"
    return DemoProcess(url, launch(cmd, url, log_path, timeout, env=env), log_path)


def stop_demo(demo: DemoProcess) -> None:
    stop(demo.process, timeout=30)


@pytest.fixture(scope="module")
def demo(luffy_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """The demo pointed at the session's luffy-serve."""
    proc = start_demo(luffy_server.base_url, tmp_path_factory.mktemp("demo") / "app.log", luffy_server.api_key)
    yield proc
    stop_demo(proc)


@pytest.fixture(scope="module")
def dead_url() -> str:
    """An endpoint URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def down_demo(dead_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """The demo pointed at a port where nothing listens."""
    proc = start_demo(dead_url, tmp_path_factory.mktemp("down-demo") / "app.log")
    yield proc
    stop_demo(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()



@dataclass
class ViewerProcess:
    url: str
    process: subprocess.Popen
    runs: tuple[Path, Path]


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerProcess]:
    """``python -m app.viewer base tuned`` on two small graded runs (tests/viewer_runs.py), base with a report."""
    from viewer_runs import write_runs

    root = tmp_path_factory.mktemp("viewer")
    runs = write_runs(root)
    subprocess.run([sys.executable, "-m", "benchmarks", "report", str(runs[0])], check=True, capture_output=True,
                   timeout=300)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = launch([sys.executable, "-m", "app.viewer", *map(str, runs), "--port", str(port)], url,
                  root / "viewer.log", 120, env=env)
    yield ViewerProcess(url, proc, runs)
    stop(proc, timeout=30)
