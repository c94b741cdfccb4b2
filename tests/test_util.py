"""luffy_util: one-line errors, package versions (here and in another interpreter), the process launcher."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from luffy_util.errors import first_line
from luffy_util.processes import LaunchError, free_port, launch, status_of, stop
from luffy_util.versions import NOT_INSTALLED, installed_versions, versions_in

REPO = Path(__file__).resolve().parents[1]
EXACT_PYTHON = REPO / ".venv-exact" / "bin" / "python"

# What Ray's RayTaskError says: its own line first, the replica's traceback, the error that started it last.
RAY_STYLE = """ray::Replica.generate() (pid=4242, ip=10.0.0.2, actor_id=abc)
  File "/x/replica.py", line 12, in generate
    raise ValueError("no such model: tiny")
Traceback (most recent call last):
  File "/x/engine.py", line 3, in start
ValueError: no such model: tiny
"""


# ---- first_line ----


@pytest.mark.parametrize("message", ["", "  ", " \n ", "\n\n", "\t\r\n"])
def test_an_empty_or_blank_message_gives_the_type_name(message: str) -> None:
    assert first_line(ValueError(message)) == "ValueError"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(message) == "Error"  # text has no type
    assert first_line(message, fallback="APIError") == "APIError"
    assert first_line(None) == "Error"


def test_the_first_non_blank_line_stripped() -> None:
    assert first_line(RuntimeError("\n  cannot load it  \nsecond line\n")) == "cannot load it"
    assert first_line("one\ntwo") == "one"
    assert first_line(OSError(2, "No such file or directory")) == "[Errno 2] No such file or directory"


def test_limit_cuts_and_none_keeps_everything() -> None:
    long = "x" * 1000
    assert first_line(ValueError(long)) == "x" * 300
    assert first_line(long, 200) == "x" * 200
    assert first_line(long, limit=None) == long
    assert first_line(ValueError(""), 3) == "Val"


def test_a_traceback_gives_its_last_line_when_asked() -> None:
    assert first_line(RAY_STYLE, last_of_traceback=True) == "ValueError: no such model: tiny"
    assert first_line(RAY_STYLE).startswith("ray::Replica.generate()")
    assert first_line("plain\nmessage", last_of_traceback=True) == "plain"  # no traceback: the first line
    assert first_line(RuntimeError(" "), last_of_traceback=True) == "RuntimeError"


def test_a_broken_str_still_gives_a_line() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert first_line(Broken()) == "Broken"


# ---- versions ----


def test_installed_versions_in_this_interpreter() -> None:
    found = installed_versions(["pytest", "no-such-package-luffy"])
    assert found == {"pytest": version("pytest"), "no-such-package-luffy": NOT_INSTALLED}
    assert installed_versions(iter(["pytest"])) == {"pytest": version("pytest")}  # any iterable


def test_versions_in_this_interpreter_match_installed_versions() -> None:
    packages = ["pytest", "packaging", "no-such-package-luffy"]
    found = versions_in(sys.executable, packages)
    assert found == installed_versions(packages)
    found["pytest"] = "changed"  # the caller's copy: the cached answer stays as it was
    assert versions_in(sys.executable, packages) == installed_versions(packages)


def test_versions_in_the_pinned_environment_are_its_own() -> None:
    """.venv-exact (LUFFY's grading pins) answers with its versions, not this environment's."""
    from luffy_math.pins import luffy_pins

    assert EXACT_PYTHON.exists(), f"missing {EXACT_PYTHON}: bash scripts/setup.sh exact"
    pins = luffy_pins()
    assert versions_in(str(EXACT_PYTHON), pins) == pins
    assert versions_in(EXACT_PYTHON, ["no-such-package-luffy"]) == {"no-such-package-luffy": NOT_INSTALLED}


def test_versions_in_an_interpreter_that_does_not_answer_is_none(tmp_path: Path) -> None:
    assert versions_in(str(tmp_path / "no-python"), ["pytest"]) is None
    failing = tmp_path / "failing-python"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    assert versions_in(str(failing), ["pytest"]) is None


def test_luffy_util_imports_only_the_standard_library() -> None:
    """LUFFY's pinned environment imports it: nothing but the standard library may come with it."""
    code = ("import sys; before = set(sys.modules); import luffy_util.errors, luffy_util.versions, "
            "luffy_util.processes; import json; print(json.dumps(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    outside = {m.split(".")[0] for m in json.loads(done.stdout)} - set(sys.stdlib_module_names) - {"luffy_util"}
    assert not outside
    subprocess.run([str(EXACT_PYTHON), "-c", code], capture_output=True, check=True, timeout=60)


# ---- processes ----


def _state_and_group(pid: int) -> tuple[str, int] | None:
    """A process's state letter and process group (from /proc), or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead; an orphan waits for a reaper that a container may not run)."""
    found = _state_and_group(pid)
    return found is None or found[0] == "Z"


def _alive_in_group(group: int) -> list[int]:
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if (found := _state_and_group(pid)) and found[1] == group and found[0] != "Z"]


def test_launch_waits_for_the_url_and_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    port = free_port()
    child_pid = tmp_path / "child.pid"
    # The server starts a child of its own first (as luffy-serve starts vLLM's engine core and its workers).
    script = (f"import pathlib, subprocess, sys; c = subprocess.Popen(['sleep', '300']); "
              f"pathlib.Path({str(child_pid)!r}).write_text(str(c.pid)); "
              f"sys.argv = ['http.server', '{port}', '--bind', '127.0.0.1']; "
              "import runpy; runpy.run_module('http.server', run_name='__main__')")
    url = f"http://127.0.0.1:{port}/"
    seen: set[int] = set()
    proc = launch([sys.executable, "-c", script], url, tmp_path / "server.log", timeout=60, cwd=tmp_path,
                  seen=seen, poll_s=0.1)
    try:
        assert proc.poll() is None
        assert status_of(url) == 200
        assert status_of(url + "no-such-file") == 404
        assert seen <= {0}  # nothing answered before the server did
        child = int(child_pid.read_text())
        assert not _gone(child)
    finally:
        stop(proc, timeout=10)
    assert proc.returncode is not None
    assert status_of(url) == 0
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the server's child outlived stop()"
    assert not _alive_in_group(proc.pid)  # the whole process group is gone


def test_a_process_that_exits_raises_with_its_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "print('cannot start: boom'); raise SystemExit(3)"]
    with pytest.raises(LaunchError, match=r"(?s)exited with 3.*cannot start: boom") as raised:
        launch(cmd, f"http://127.0.0.1:{free_port()}/", tmp_path / "log", timeout=30, poll_s=0.1)
    assert raised.value.summary.endswith("exited with 3")  # one line, for a CLI; the log apart
    assert raised.value.log_tail.strip() == "cannot start: boom"


def test_a_process_that_never_answers_is_killed(tmp_path: Path) -> None:
    seen: set[int] = set()
    cmd = [sys.executable, "-c", "import time; print('waiting', flush=True); time.sleep(300)"]
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"(?s)did not answer .* in 1s.*waiting") as raised:
        launch(cmd, f"http://127.0.0.1:{free_port()}/", tmp_path / "log", timeout=1, seen=seen, poll_s=0.1)
    assert time.monotonic() - started < 20
    assert seen == {0}  # no connection, each time it asked
    assert isinstance(raised.value, RuntimeError)  # what callers caught before the launcher moved here
