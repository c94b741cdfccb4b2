"""luffy-serve's start-up as a user meets it: seconds to the first HTTP answer and to 200, the log before ready,
what is printed at a clean stop, and seconds for ``--help`` and for a mistyped flag.

Each round runs, for every tree given (``--trees``: this one and, say, the tree before a change made with
``git worktree add /tmp/before HEAD``), one after the other: ``python -m luffy_serve --help``,
``python -m luffy_serve --prot 8301`` (a typo of ``--port``), and a server on the tiny checkpoint as the first
command of docs/performance.md starts it (``--model DIR --max-model-len 1024``), polled every 0.1 s on ``/health``
until 200, then stopped with SIGTERM. "Before ready" is what the log held when ``/health`` first said 200;
what it gets after that, through the stop, is searched for leak reports. Every tree runs with this environment's interpreter, from its own folder
(``PYTHONPATH``), so only the code differs. Rounds interleave the trees; the report gives medians and the
median of the per-round ratios (timings on a shared machine swing 15-30 %). A report, never a test.

    .venv/bin/python perf/startup_bench.py --trees /tmp/before,. [--rounds 3] [--out artifacts/startup_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serve_bench import REPO, tiny_checkpoint

from luffy_util.processes import free_port, status_of

ACCESS = re.compile(r'"(GET|POST) [^"]*" \d{3}')  # uvicorn's access log
LEAKS = ("nanobind: leaked", "leaked instance", "leaked type", "leaked function", "resource_tracker",
         "Traceback")


def run_cli(tree: Path, args: list[str]) -> dict:
    """One command line: seconds, exit code, stderr lines, the last line."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "luffy_serve", *args], cwd=tree, env=_env(tree),
                            capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    err = result.stderr.strip().splitlines()
    return {"seconds": round(took, 2), "exit": result.returncode, "stderr_lines": len(err),
            "stdout_lines": len(result.stdout.splitlines()), "last_line": err[-1][:200] if err else ""}


def run_server(tree: Path, model: str, log: Path) -> dict:
    """A server from start to 200 and through a SIGTERM stop."""
    port = free_port()
    cmd = [sys.executable, "-m", "luffy_serve", "--model", model, "--max-model-len", "1024",
           "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/health"
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    first = ready = None
    ready_offset = None
    first_status = None
    refused_after_first = 0
    while time.monotonic() - started < 900 and proc.poll() is None:
        status = status_of(url, timeout=5)
        now = time.monotonic() - started
        if status and first is None:
            first, first_status = now, status
        elif not status and first is not None:
            refused_after_first += 1
        if status == 200:
            ready, ready_offset = now, log.stat().st_size  # what was logged by then
            break
        time.sleep(0.1)
    stop_started = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    stopped = time.monotonic() - stop_started
    text = log.read_bytes()
    cut = len(text) if ready_offset is None else ready_offset
    before = [line for line in text[:cut].decode(errors="replace").splitlines() if line.strip()]
    after = text[cut:].decode(errors="replace").splitlines()
    return {"first_answer_s": _round(first), "first_status": first_status, "ready_s": _round(ready),
            "refused_after_first_answer": refused_after_first,
            "lines_before_ready": len(before),
            "lines_before_ready_without_access_log": len([line for line in before if not ACCESS.search(line)]),
            "warning_lines_before_ready": len([line for line in before if "WARNING" in line or "Warning" in line]),
            "leak_lines_at_stop": len([line for line in after if any(leak in line for leak in LEAKS)]),
            "stop_s": round(stopped, 2), "exit": code, "log": str(log)}


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def summary(rounds: list[dict], trees: list[str]) -> dict:
    """Per tree the median of each figure; per figure the median of the per-round ratios (last tree / first)."""
    figures = {"help_s": ("help", "seconds"), "refused_flag_s": ("refused", "seconds"),
               "refused_flag_lines": ("refused", "stderr_lines"), "first_answer_s": ("server", "first_answer_s"),
               "ready_s": ("server", "ready_s"), "lines_before_ready": ("server", "lines_before_ready"),
               "lines_before_ready_without_access_log": ("server", "lines_before_ready_without_access_log"),
               "warning_lines_before_ready": ("server", "warning_lines_before_ready"),
               "leak_lines_at_stop": ("server", "leak_lines_at_stop"), "stop_s": ("server", "stop_s")}
    out: dict = {"medians": {}, "ratio_last_to_first": {}}
    for tree in trees:
        out["medians"][tree] = {name: _median([r[tree][part][key] for r in rounds])
                                for name, (part, key) in figures.items()}
    for name, (part, key) in figures.items():
        ratios = [r[trees[-1]][part][key] / r[trees[0]][part][key] for r in rounds
                  if r[trees[0]][part][key] and r[trees[-1]][part][key] is not None]
        out["ratio_last_to_first"][name] = _median(ratios)
    return out


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=".", help="comma-separated source trees, the baseline first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the tiny test checkpoint)")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "startup_bench.json")
    args = parser.parse_args()
    trees = [str((REPO / t).resolve()) if not Path(t).is_absolute() else t for t in args.trees.split(",")]
    model = args.model or tiny_checkpoint()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rounds = []
    for n in range(args.rounds):
        result = {}
        for i, tree in enumerate(trees):
            log = args.out.with_name(f"{args.out.stem}_r{n}_t{i}.log")
            result[tree] = {"help": run_cli(Path(tree), ["--help"]),
                            "refused": run_cli(Path(tree), ["--model", model, "--prot", "8301"]),
                            "server": run_server(Path(tree), model, log)}
            print(f"round {n + 1} {tree}: {json.dumps(result[tree])}", flush=True)
        rounds.append(result)
    report = {"command": " ".join(sys.argv), "trees": trees, "model": model, "rounds": rounds,
              "summary": summary(rounds, trees), "load_average": os.getloadavg()}
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
