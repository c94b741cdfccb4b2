"""Run a command line as a user does and check how it refuses bad input: exit 2, one error line, nothing loaded.

"Nothing loaded" is checked with tripwires: a directory put first on PYTHONPATH holds a stand-in package for
each heavy dependency (vLLM, torch, gradio ...) that records its import in a file and fails. The real package
is never needed by a refusal, so a refusal that reaches an engine or a model shows up as a recorded import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIPWIRE = '''import pathlib
pathlib.Path({marker!r}).write_text({name!r})
raise ImportError("tripwire: {name} imported while refusing bad input")
'''


def run_cli(module: str, args: list[str], tmp_path: Path, forbid: tuple[str, ...] = (),
            env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m module args`` from the repository root, with a tripwire for every package in ``forbid``."""
    wires = tmp_path / "tripwires"
    for name in forbid:
        (wires / name).mkdir(parents=True, exist_ok=True)
        (wires / name / "__init__.py").write_text(TRIPWIRE.format(marker=str(wires / f"{name}.imported"), name=name))
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(wires), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=timeout)


def tripped(tmp_path: Path) -> list[str]:
    """The forbidden packages the command imported."""
    return sorted(p.read_text() for p in (tmp_path / "tripwires").glob("*.imported"))


def refusal(result: subprocess.CompletedProcess, tmp_path: Path) -> str:
    """Assert exit 2, no traceback, no forbidden import, and stderr = [argparse's usage block] + one error line.

    Returns the error line. argparse's own errors print the usage block first (the project's convention,
    as ``python -m app`` and luffy-serve do); errors found after parsing print the error line alone.
    """
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not tripped(tmp_path), f"imported {tripped(tmp_path)} while refusing: {result.stderr}"
    assert lines, "nothing on stderr"
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]], result.stderr
    usage = lines[:-1]
    if usage:
        assert usage[0].startswith("usage: ") and all(line.startswith(" ") for line in usage[1:]), result.stderr
    return lines[-1]
