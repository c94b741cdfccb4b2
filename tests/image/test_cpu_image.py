"""The CPU image built and used as a user would: ``scripts/image_check.py`` builds Dockerfile.cpu (docker, or
podman where no daemon runs), starts it detached on the tiny checkpoint with a restart policy, and checks what a
user sees. The build is cached by the container tool between runs on one machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKS = [
    "/health answers 200",
    "chat: reasoning_content",
    "chat: answer",
    "chat: grade",
    "/v1/grade",
    "HEALTHCHECK healthy",
    "runs as uid 1000",
    "writes nothing outside its cache volume",
    "SIGTERM: drained, exit 0",
]


@pytest.fixture(scope="session")
def image_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("image") / "report.json"
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "image_check.py"), "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=3600)
    print(result.stdout[-3000:], f"\n[image] whole check {time.perf_counter() - t0:.0f} s")
    if not out.exists():
        pytest.fail(f"image_check.py wrote no report (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(out.read_text())


def test_image_builds(image_report: dict) -> None:
    assert image_report["build_s"] is not None and image_report["image_bytes"], image_report["notes"]
    assert "completed" not in image_report["checks"], image_report["notes"].get("completed")


@pytest.mark.parametrize("check", CHECKS)
def test_image_check(image_report: dict, check: str) -> None:
    assert image_report["checks"].get(check) is True, (check, image_report["notes"].get(check),
                                                       image_report["notes"].get("log_tail", "")[-1500:])
