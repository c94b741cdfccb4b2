"""The two ways in to the demo: ``python -m app`` and mounting ``app.demo.mount`` in a FastAPI app."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import refusal, run_cli

REPO = Path(__file__).resolve().parents[2]


def run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_help() -> None:
    result = run_app("--help")
    assert result.returncode == 0
    assert "--base-url" in result.stdout and "--api-key" in result.stdout


BAD_ARGUMENTS = [
    (["--max-tokens", "0"], "argument --max-tokens: must be at least 1, got 0"),
    (["--max-tokens", "many"], "argument --max-tokens: expected an integer, got 'many'"),
    (["--port", "99999"], "argument --port: a port must be between 1 and 65535, got 99999"),
    (["--port", "0"], "argument --port: a port must be between 1 and 65535, got 0"),
    (["--port", "http"], "argument --port: expected an integer, got 'http'"),
    (["--base-url", "127.0.0.1:8000"], "argument --base-url: expected http://HOST[:PORT][/PATH] or https://..."),
    (["--base-url", "ftp://127.0.0.1"], "argument --base-url: expected http://HOST[:PORT][/PATH] or https://..."),
    (["--base-url", "http://127.0.0.1:70000"], "argument --base-url: not a URL (Port out of range 0-65535)"),
    (["--base-url", "http://127.0.0.1:8000/v1?x=1"], "argument --base-url: the URL must not carry a query"),
    (["--host", ""], "argument --host: expected a host name or IP address, got ''"),
    (["--host", "http://0.0.0.0"], "argument --host: expected a host name or IP address"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_argument_is_one_line_before_gradio_loads(tmp_path: Path, args: list[str], message: str) -> None:
    """Exit 2, argparse's usage and one error line; gradio (tripwired, see tests/cli_errors.py) never imported."""
    line = refusal(run_cli("app", args, tmp_path, forbid=("gradio", "vllm")), tmp_path)
    assert line.startswith("python -m app: error: ") and message in line


def test_bad_base_url_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("app", [], tmp_path, forbid=("gradio",), env={"LUFFY_BASE_URL": "localhost"})
    assert "argument --base-url: expected http://HOST[:PORT][/PATH]" in refusal(result, tmp_path)


def test_taken_port_is_one_line(dead_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_app("--base-url", dead_url, "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_mounts_at_demo_in_a_fastapi_app(dead_url: str) -> None:
    """What ``luffy-serve --demo`` does: ``app.demo.mount`` puts the Blocks at /demo of its own FastAPI app."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.demo import mount

    mounted = mount(FastAPI(), dead_url, api_key="key", model="tiny")
    assert mounted.gradio_app is not None
    with TestClient(mounted.routes) as client:
        page = client.get("/demo/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        config = client.get("/demo/config").json()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Chat", "Temperature", "Max tokens", "Check against (gold answer, optional)",
            "Seed (optional: the same seed, the same samples)"} <= labels
