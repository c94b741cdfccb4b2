"""luffy-serve under faults: what the server does when a part of it dies, or when it is told to stop.

Each scenario starts a fresh ``luffy-serve`` (tiny checkpoint, its own process session), puts the same load on
it (``--streams`` long chat streams with ``n = 2`` and a gold, and a loop of ``/v1/grade`` requests in the
``luffy_exact`` mode, whose workers live in a host process on ``.venv-exact``), waits until every stream has
sent a few chunks, then:

- ``engine-kill``: SIGKILL to vLLM's engine core process;
- ``sigterm``: SIGTERM to the server (what Docker, Kubernetes and systemd send to stop it);
- ``grading-worker``: SIGKILL to the grading worker of the chat and completions math fields;
- ``exact-host``: SIGKILL to the ``luffy_exact`` grading host.

It prints for each what the server did: its exit code and the seconds from the fault to its exit (or that it
kept serving, with ``/health`` and one fresh request after the fault), how each stream ended (``[DONE]`` after
a finish reason; an OpenAI error event; cut without either), what ``/v1/grade`` answered, whether a new
connection was refused while it drained, the processes of its session left at its exit and the seconds until
none was left, and the server's log line that says why it stopped. A report, never a test; exit code 0 unless
the script itself fails.

    python perf/fault_bench.py [--model DIR] [--scenarios engine-kill,sigterm,grading-worker,exact-host]
                               [--streams 6] [--max-tokens 900] [--out artifacts/fault_bench.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
from serve_bench import REPO, start, tiny_checkpoint

from luffy_util.processes import free_port, stop

KEY = "fault-key"
SCENARIOS = ("engine-kill", "sigterm", "grading-worker", "exact-host")
EXACT_ANSWERS = [r"2^{2^{2^{2^{100}}}}", r"((20!)!)!", r"(x+1)^{10000}", "42"]  # seconds each to grade
WHY_LINE = "the vLLM engine died"


@dataclass
class Stream:
    chunks: int = 0
    ended: str = "running"  # done | error | cut
    error: str | None = None
    ended_at: float | None = None  # time.monotonic()
    grades: list[str] = field(default_factory=list)  # each choice's grade.decided_by (its finishing chunk)


@dataclass
class Outcome:
    scenario: str
    fault_at: float = 0.0
    target: str = ""
    exit_code: int | None = None
    exit_after_s: float | None = None
    streams: list[Stream] = field(default_factory=list)
    grade_statuses: list[str] = field(default_factory=list)  # /v1/grade answers after the fault
    new_connection: str | None = None  # while it drains (sigterm)
    left_at_exit: list[str] = field(default_factory=list)
    empty_after_s: float | None = None
    health_after: int | None = None
    fresh_request: str | None = None
    why: str | None = None


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) == sid:
                found.append(process)
    return found


def describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        cmdline = " ".join(process.cmdline())
        for marker in ("resource_tracker", "forkserver", "luffy_math.workers.host", "luffy_serve"):
            if marker in cmdline:
                return f"{process.pid} {marker}"
        return f"{process.pid} {process.name()}"
    return f"{process.pid} (gone)"


def target_of(scenario: str, server: subprocess.Popen) -> psutil.Process | None:
    """The process the fault hits (None: the server itself)."""
    tree = psutil.Process(server.pid).children(recursive=True)
    if scenario == "engine-kill":
        return next(p for p in tree if "EngineCore" in p.name())
    if scenario == "exact-host":
        return next(p for p in tree if "luffy_math.workers.host" in " ".join(p.cmdline()))
    if scenario == "grading-worker":  # forked by this interpreter's fork server; the math fields' pool is not niced
        servers = [p for p in tree if p.ppid() == server.pid and "forkserver" in " ".join(p.cmdline())]
        return next(p for p in tree if servers and p.ppid() == servers[0].pid and p.nice() == 0)
    return None


class Load:
    def __init__(self, base_url: str, args: argparse.Namespace):
        self.base_url, self.args = base_url, args
        self.auth = {"Authorization": f"Bearer {KEY}"}
        self.streams = [Stream() for _ in range(args.streams)]
        self.grades: list[tuple[float, str]] = []  # (answered at, what)
        self.running = True

    async def stream(self, http: httpx.AsyncClient, state: Stream, i: int) -> None:
        body = {"model": "tiny", "messages": [{"role": "user", "content": f"What is {i} + {42 - i}?"}],
                "stream": True, "n": 2, "gold": "42", "max_tokens": self.args.max_tokens, "ignore_eos": True}
        try:
            async with http.stream("POST", "/v1/chat/completions", json=body, headers=self.auth) as response:
                if response.status_code != 200:
                    state.ended, state.error = "error", f"HTTP {response.status_code}"
                    return
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        state.ended = "done" if state.ended != "error" else "error"
                        break
                    event = json.loads(data)
                    if "error" in event:
                        state.ended, state.error = "error", str(event["error"].get("message"))[:80]
                    else:
                        state.chunks += 1
                        state.grades += [c["grade"]["decided_by"] for c in event.get("choices", []) if c.get("grade")]
            if state.ended == "running":
                state.ended = "cut"
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            state.ended, state.error = "cut", type(exc).__name__
        finally:
            state.ended_at = time.monotonic()

    async def grade_loop(self, http: httpx.AsyncClient) -> None:
        while self.running:
            try:
                response = await http.post("/v1/grade", headers=self.auth, json={
                    "answers": EXACT_ANSWERS, "gold": "42", "mode": "luffy_exact"})
                grades = response.json().get("grades") if response.status_code == 200 else None
                what = str(response.status_code) + (f" ({tally(grades)})" if grades else "")
            except (httpx.HTTPError, ValueError) as exc:
                what = type(exc).__name__
            self.grades.append((time.monotonic(), what))
            await asyncio.sleep(0.2)


def tally(grades: list[dict]) -> str:
    died = sum(g["decided_by"] == "worker_died" for g in grades)
    return f"{sum(g['correct'] for g in grades)} correct, {died} worker_died"


async def fresh_request(base_url: str) -> str:
    """One chat request and one luffy_exact grade after the fault, on a new connection."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        started = time.monotonic()
        try:
            chat = await http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json={
                "model": "tiny", "messages": [{"role": "user", "content": "What is 1 + 41?"}], "max_tokens": 32,
                "gold": "42"})
            grade = await http.post("/v1/grade", headers={"Authorization": f"Bearer {KEY}"},
                                    json={"answers": ["42"], "gold": "42", "mode": "luffy_exact"})
        except httpx.HTTPError as exc:
            return type(exc).__name__
        took = time.monotonic() - started
        decided = [c.get("grade", {}).get("decided_by") for c in chat.json().get("choices", [])] \
            if chat.status_code == 200 else []
        exact = [g["decided_by"] for g in grade.json().get("grades", [])] if grade.status_code == 200 else []
        return (f"chat {chat.status_code} (grade decided by {', '.join(map(str, decided)) or '-'}), luffy_exact "
                f"grade {grade.status_code} (decided by {', '.join(exact) or '-'}); {took:.1f} s")


def connection_refused(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return type(exc).__name__


async def run_scenario(scenario: str, server: subprocess.Popen, port: int, log: Path,
                       args: argparse.Namespace) -> Outcome:
    outcome = Outcome(scenario)
    base_url = f"http://127.0.0.1:{port}"
    load = Load(base_url, args)
    limits = httpx.Limits(max_connections=args.streams + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(300), limits=limits) as http:
        # The exact host starts on the first luffy_exact request; give it time before the streams start.
        await http.post("/v1/grade", headers=load.auth, json={"answers": ["1"], "gold": "1", "mode": "luffy_exact"})
        tasks = [asyncio.create_task(load.stream(http, s, i)) for i, s in enumerate(load.streams)]
        grader = asyncio.create_task(load.grade_loop(http))
        while min(s.chunks for s in load.streams) < args.chunks_before and not all(t.done() for t in tasks):
            await asyncio.sleep(0.02)
        target = target_of(scenario, server)
        outcome.target = describe(target) if target else f"{server.pid} luffy_serve"
        outcome.fault_at = time.monotonic()
        (target.kill() if target else server.send_signal(signal.SIGTERM))
        sid = server.pid
        if scenario == "sigterm":
            await asyncio.sleep(0.5)
            outcome.new_connection = connection_refused(port)
        settled = threading.Event()  # the streams have ended, and --settle seconds more have passed
        exit_task = asyncio.create_task(asyncio.to_thread(wait_exit, server, settled))
        await asyncio.wait(tasks, timeout=args.watch)
        # Told to stop, it drains its /v1/grade requests too (up to their deadline): wait for that exit.
        await asyncio.wait({exit_task}, timeout=args.watch if target is None else args.settle)
        settled.set()
        load.running = False
        code, exited_at, left = await exit_task
        await asyncio.wait({grader}, timeout=5)
        grader.cancel()
    if code is not None:
        outcome.exit_code, outcome.exit_after_s = code, round(exited_at - outcome.fault_at, 2)
        outcome.left_at_exit = left
        deadline = time.monotonic() + 30
        while session_processes(sid) and time.monotonic() < deadline:
            time.sleep(0.05)
        outcome.empty_after_s = round(time.monotonic() - outcome.fault_at, 2) if not session_processes(sid) else None
    else:
        from luffy_util.processes import status_of

        outcome.health_after = status_of(f"{base_url}/health")
        outcome.fresh_request = await fresh_request(base_url)
    outcome.streams = load.streams
    outcome.grade_statuses = [what for at, what in load.grades if at > outcome.fault_at]
    why = [line for line in log.read_text(errors="replace").splitlines() if WHY_LINE in line]
    outcome.why = why[0] if why else None
    return outcome


def wait_exit(server: subprocess.Popen, settled: threading.Event) -> tuple[int | None, float, list[str]]:
    """(exit code or None if it did not exit before ``settled``, when, the processes of its session then)."""
    while server.poll() is None:
        if settled.is_set():
            return None, time.monotonic(), []
        time.sleep(0.01)
    at = time.monotonic()
    return server.returncode, at, [describe(p) for p in session_processes(server.pid)]


def print_outcome(o: Outcome) -> None:
    ended: dict[str, int] = {}
    for s in o.streams:
        ended[s.ended] = ended.get(s.ended, 0) + 1
    last = max((s.ended_at for s in o.streams if s.ended_at), default=None)
    print(f"\n{o.scenario}: fault on {o.target}")
    if o.exit_code is not None:
        print(f"  server: exited with code {o.exit_code}, {o.exit_after_s} s after the fault")
        print(f"  its session at exit: {', '.join(o.left_at_exit) or 'nothing left'}; empty "
              f"{o.empty_after_s} s after the fault")
    else:
        print(f"  server: kept serving; /health {o.health_after}; a fresh request: {o.fresh_request}")
    print(f"  streams ({len(o.streams)}): " + ", ".join(f"{n} {kind}" for kind, n in sorted(ended.items()))
          + (f"; the last ended {last - o.fault_at:.2f} s after the fault" if last else ""))
    grades: dict[str, int] = {}
    for decided_by in (g for s in o.streams for g in s.grades):
        grades[decided_by] = grades.get(decided_by, 0) + 1
    if grades:
        print("    choices' grades, decided by: " + ", ".join(f"{k} {n}" for k, n in sorted(grades.items())))
    errors = {s.error for s in o.streams if s.error}
    if errors:
        print(f"    errors: {'; '.join(sorted(errors))}")
    if o.new_connection:
        print(f"  a new connection 0.5 s after SIGTERM: {o.new_connection}")
    if o.grade_statuses:
        runs: list[list] = []  # consecutive equal answers, counted
        for what in o.grade_statuses:
            if runs and runs[-1][0] == what:
                runs[-1][1] += 1
            else:
                runs.append([what, 1])
        print("  /v1/grade (luffy_exact) after the fault, in order: "
              + ", ".join(f"{what} x{n}" if n > 1 else what for what, n in runs))
    if o.why:
        print(f"  log: {o.why.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (default: the tiny one, built once and cached)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    parser.add_argument("--streams", type=int, default=6, help="concurrent chat streams (n = 2, with a gold)")
    parser.add_argument("--max-tokens", type=int, default=900, help="tokens per choice (ignore_eos)")
    parser.add_argument("--chunks-before", type=int, default=2,
                        help="chunks every stream has before the fault (the role chunk and the first text; a busy "
                             "server packs many tokens into one chunk)")
    parser.add_argument("--watch", type=float, default=120.0, help="most seconds to wait for the streams to end")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after the streams ended to wait for the server's exit")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "fault_bench.json")
    args, server_flags = parser.parse_known_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := [s for s in scenarios if s not in SCENARIOS]:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    model = args.model or tiny_checkpoint()
    work = Path(tempfile.mkdtemp(prefix="fault-bench-"))
    outcomes = []
    for scenario in scenarios:
        port = free_port()
        log = work / f"{scenario}.log"
        cmd = [sys.executable, "-m", "luffy_serve", "--model", model, "--host", "127.0.0.1", "--port", str(port),
               "--api-key", KEY, "--served-model-name", "tiny", "--max-model-len", "1024",
               "--disable-uvicorn-access-log", *[f for f in server_flags if f != "--"]]
        print(f"{scenario}: starting luffy-serve on port {port} (log: {log})", flush=True)
        server = start(cmd, port, log)
        try:
            outcome = asyncio.run(run_scenario(scenario, server, port, log, args))
        finally:
            stop(server, timeout=60)
        print_outcome(outcome)
        outcomes.append(outcome)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                    "outcomes": [asdict(o) for o in outcomes]}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
