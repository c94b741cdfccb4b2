"""Run a command line as a user does and check how it refuses bad input: exit 2, one error line, nothing loaded.

"Nothing loaded" is checked with tripwires: a directory put first on PYTHONPATH holds a stand-in package for
each heavy dependency (vLLM, torch, gradio ...) that records its import in a file and fails. The real package
is never needed by a refusal, so a refusal that reaches an engine or a model shows up as a recorded import.

``run_cli`` starts a fresh interpreter (``python -m module``): what the command imports on its way in counts.
``call_main`` calls the command's ``main(argv)`` in this process, a few hundred times cheaper, with the same
tripwires as an import hook; it checks where a refusal happens, not what the command imports before it gets
to run (modules this process imported earlier stay imported), so each command keeps one ``run_cli`` test.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
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


def call_main(main: Callable[[list[str]], int | None], args: list[str], tmp_path: Path,
              forbid: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``main(args)`` in this process, as ``run_cli`` runs the command: its exit code (``SystemExit`` or the
    return value) and what it printed. Importing a package in ``forbid`` fails and is recorded as ``run_cli``'s
    tripwires record it, also when this process had imported it already. The environment, the root logger and
    the SIGTERM handler, which a command may change for itself, are as before afterwards."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with _state_kept(), _tripwires(forbid, tmp_path / "tripwires"), \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code
    if not isinstance(code, int | None):  # sys.exit("message"): printed, exit code 1
        stderr.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(args, code or 0, stdout.getvalue(), stderr.getvalue())


class _Tripwire(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every module of the packages ``names``; loading one records the package and fails (as the
    stand-in packages of ``run_cli`` do: finding it, as ``importlib.util.find_spec`` does, is not importing it)."""

    def __init__(self, names: tuple[str, ...], wires: Path):
        self.names, self.wires = names, wires

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if _package(fullname) in self.names else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        name = _package(module.__name__)
        self.wires.mkdir(parents=True, exist_ok=True)
        (self.wires / f"{name}.imported").write_text(name)
        raise ImportError(f"tripwire: {name} imported while refusing bad input")


def _package(module: str) -> str:
    return module.partition(".")[0]


@contextlib.contextmanager
def _tripwires(names: tuple[str, ...], wires: Path) -> Iterator[None]:
    """Inside: the packages ``names`` are out of ``sys.modules`` (so an import of them reaches the tripwire),
    and back as they were afterwards."""
    aside = {key: sys.modules.pop(key) for key in list(sys.modules) if _package(key) in names}
    tripwire = _Tripwire(names, wires)
    sys.meta_path.insert(0, tripwire)
    try:
        yield
    finally:
        sys.meta_path.remove(tripwire)
        for key in [key for key in sys.modules if _package(key) in names]:
            del sys.modules[key]
        sys.modules.update(aside)


@contextlib.contextmanager
def _state_kept() -> Iterator[None]:
    """What a command's ``main`` may change for its process and the processes it starts: the environment, the
    root logger's handlers and level, the SIGTERM handler. As they were, afterwards."""
    environ = dict(os.environ)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        os.environ.update(environ)
        root.handlers[:] = handlers
        root.setLevel(level)
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


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
