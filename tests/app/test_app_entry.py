"""The two ways in to the demo: ``python -m app`` and mounting ``build_demo`` in a FastAPI app."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_help() -> None:
    result = run_app("--help")
    assert result.returncode == 0
    assert "--base-url" in result.stdout and "--api-key" in result.stdout


def test_bad_argument_is_one_line() -> None:
    result = run_app("--max-tokens", "0")
    assert result.returncode == 2
    assert "--max-tokens must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr


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
    """What ``luffy-serve --demo`` does: mount the Blocks at /demo of its own FastAPI app."""
    import gradio
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.demo import build_demo

    demo = build_demo(dead_url, "key", "tiny")
    assert isinstance(demo, gradio.Blocks)
    server = gradio.mount_gradio_app(FastAPI(), demo, path="/demo")
    with TestClient(server) as client:
        page = client.get("/demo/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        config = client.get("/demo/config").json()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Chat", "Temperature", "Max tokens", "Check against (gold answer, optional)"} <= labels
