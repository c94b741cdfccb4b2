"""luffy-serve's refusals and --help come before vLLM is imported: one line, exit code 2, luffy's flags shown.

The "before vLLM" part is checked by what the process has imported when it exits (``sys.modules``), not by a
timed assert; the seconds are measured by perf/startup_bench.py. One refusal of each stage runs the command in a
fresh interpreter, as a user does; the other cases call ``main`` in this process with tripwires on the heavy
packages (tests/cli_errors.py), which fail any import of them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cli_errors import call_main, tripped

from luffy_serve import early_args
from luffy_serve.cli import main
from luffy_serve.vllm_flags import installed_flags, known_flags
from luffy_util.processes import free_port

HEAVY = ("vllm", "torch", "transformers")
# Runs luffy-serve's main in a process that says, as it exits, which heavy packages it imported.
PROBE = ("import atexit, sys\n"
         "atexit.register(lambda: print('IMPORTED', sorted(m for m in {heavy!r} if m in sys.modules)))\n"
         "from luffy_serve.cli import main\n"
         "main({argv!r})\n")


def run_main(*argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    code = PROBE.format(heavy=HEAVY, argv=list(argv))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    imported = next(line for line in result.stdout.splitlines() if line.startswith("IMPORTED"))
    return result, eval(imported.removeprefix("IMPORTED "))


def test_a_mistyped_flag_is_one_line_with_the_nearest_flag_and_vllm_is_not_imported():
    result, imported = run_main("--prot", "8301")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "luffy-serve: error: unrecognized argument --prot (did you mean --port?)"]
    assert imported == []


@pytest.mark.parametrize(("flags", "said"), [
    (["--port", "99999"], "argument --port: a port must be between 1 and 65535, got 99999"),
    (["--grading-workers", "0"], "argument --grading-workers: must be at least 1"),
    (["--log-level", "loud"], "argument --log-level: expected one of quiet, warning, info, debug"),
    (["--max-model-lne", "1024"], "unrecognized argument --max-model-lne (did you mean --max-model-len?)"),
])
def test_bad_values_and_names_are_one_line_before_vllm(tmp_path, flags, said):
    result = call_main(main, flags, tmp_path, forbid=HEAVY)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and said in lines[0], result.stderr
    assert tripped(tmp_path) == []


def test_help_shows_luffys_flags_and_how_to_see_vllms_without_importing_it(tmp_path):
    result = call_main(main, ["--help"], tmp_path, forbid=HEAVY)
    assert result.returncode == 0
    for flag in ("--grading-workers", "--grade-deadline", "--demo", "--log-level", "--port", "--model",
                 "--help-vllm"):
        assert flag in result.stdout
    assert "luffy-serve --help-vllm" in result.stdout
    assert tripped(tmp_path) == []


def test_vllms_flags_pass_the_early_check_in_every_spelling_vllm_takes():
    args = early_args.parse(["MODEL_DIR", "--max_model_len", "1024", "-tp", "1", "--compilation-config.mode", "3",
                             "--enforce-eager", "--seed", "-1", "--port=8123", "-O3", "--max-num-seq", "4"])
    assert (args.model, args.port) == ("MODEL_DIR", 8123)


def test_the_checked_in_vllm_flags_are_the_installed_vllms():
    """Fails when vLLM's flags change: rewrite the list with `python -m luffy_serve.vllm_flags`."""
    assert sorted(known_flags()) == installed_flags()


def test_the_early_copies_of_vllm_flags_match_luffys_full_parser():
    """The vLLM flags read before vLLM loads are declared as vLLM's parser (with luffy's changes) has them."""
    from luffy_serve.cli import build_parser

    full = {a.dest: a for a in build_parser()._actions}
    early = {a.dest: a for a in early_args.build_parser()._actions}
    for dest in (*early_args.EARLY_VLLM_DESTS, "log_level"):
        assert early[dest].option_strings == full[dest].option_strings, dest
        assert early[dest].default == full[dest].default, dest
        assert early[dest].choices == full[dest].choices, dest
    for dest in early:  # luffy's own flags: the same in both
        if dest in full and dest not in ("help",):
            assert early[dest].option_strings == full[dest].option_strings, dest


def test_a_value_only_vllm_can_check_is_one_line_and_exit_2_before_any_weights_load(tiny_model_dir):
    """vLLM's parser runs once vLLM is imported (the port already answers 503 then); its refusal is one line."""
    result = subprocess.run([sys.executable, "-m", "luffy_serve", "--model", str(tiny_model_dir), "--host",
                             "127.0.0.1", "--port", str(free_port()), "--max-model-len", "abc"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "luffy-serve: error: argument --max-model-len: invalid human_readable_int_or_auto value: 'abc'")
    assert "Loading the weights" not in result.stderr
