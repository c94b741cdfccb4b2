"""`run --vote adaptive`: maj@k from as few samples as the majority needs.

Each problem's samples are drawn in index order, wave after wave, and a problem stops getting more once the
stopping rule (:func:`luffy_math.vote.settled`, Adaptive-Consistency's Beta criterion, arXiv 2305.11860)
says its leading answer (luffy grader's answers, grouped by LUFFY's equivalence) is settled at the
confidence, or at its n. A wave gives every open problem ``--vote-wave`` more samples, by default the fewest
that could settle it (all agreeing with the leader). Sample i keeps the seed the full run gives it, so the
samples drawn are the full run's first ones and a run resumes like any other.

Records carry ``"vote": {"mode": "adaptive", "confidence": c}``: avg@k and pass@k need all n samples of every
problem and are never computed from them (metrics.py refuses); the run writes vote.md and vote.json (maj
accuracy per grader, mean samples used) instead of the usual report.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.grading import graders_here
from benchmarks.metrics import majority_correct
from benchmarks.problems import HarnessError, Problem
from benchmarks.runner import (
    GRADING_NICE,
    Collector,
    RunOptions,
    benchmark_config,
    default_grading_workers,
    package_versions,
    sample_seed,
    samples_for,
)
from benchmarks.samplers.base import Completion, Sampler, SampleRequest
from benchmarks.sources import load_problems
from benchmarks.store import SampleStore, append_line, cannot_write, read_records, replace_together
from benchmarks.tasks import BENCHMARKS
from luffy_math.vote import more_to_settle, settled, vote_groups


class VoteCollector(Collector):
    """The run's collector; each record says it belongs to an adaptive vote."""

    def __init__(self, *args: Any, vote: dict[str, Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.vote = vote

    def record(self, completion: Completion, problem: Problem, grades: dict[str, Any]) -> dict[str, Any]:
        return {**super().record(completion, problem, grades), "vote": self.vote}


def next_wave(problems: list[Problem], options: RunOptions, store: SampleStore, confidence: float,
              wave: int | None) -> list[SampleRequest]:
    """The samples each open problem gets next (none: every vote is settled or at its n)."""
    pending = []
    for problem in problems:
        budget = samples_for(problem, options)
        have = 0
        while have < budget and (problem.benchmark, problem.problem_id, have) in store.records:
            have += 1
        records = [store.records[(problem.benchmark, problem.problem_id, i)] for i in range(have)]
        counts = [count for _, count in vote_groups([r.get("extracted") for r in records])]
        if have == budget or settled(counts, confidence):
            continue
        more = wave or more_to_settle(counts, confidence)
        pending += [SampleRequest((problem.benchmark, problem.problem_id, i), problem.prompt,
                                  sample_seed(options.seed, (problem.benchmark, problem.problem_id, i)))
                    for i in range(have, min(budget, have + more))]
    return pending


def run_adaptive(options: RunOptions, make_sampler: Callable[[], Sampler], confidence: float,
                 wave: int | None = None) -> str:
    """Generate waves under options.out until every problem's vote is settled; return vote.md's text."""
    from luffy_math.workers import GradingPool

    vote = {"mode": "adaptive", "confidence": confidence, **({"wave": wave} if wave else {})}
    full = load_problems(options.benchmarks, options.data)
    store = SampleStore(options.out, options.seed)
    started, generated = time.time(), 0
    try:
        hashes = {name: store.claim_config(name, {**benchmark_config(name, variant, problems, options),
                                                  "vote": vote})
                  for name, (problems, variant) in full.items()}
        problems = [p for problems, _ in full.values() for p in problems[: options.limit]]
        by_key = {(p.benchmark, p.problem_id): p for p in problems}
        graders = graders_here()
        sampler: Sampler | None = None
        with GradingPool(workers=options.grading_workers or default_grading_workers(), nice=GRADING_NICE) as pool:
            bar = tqdm(desc="samples (adaptive vote)", unit="sample", disable=not options.progress,
                       dynamic_ncols=True)
            collector = VoteCollector(store, pool, by_key, hashes, options.seed, bar, graders, vote=vote)
            try:
                while pending := next_wave(problems, options, store, confidence, wave):
                    bar.total = (bar.total or 0) + len(pending)
                    bar.refresh()
                    sampler = sampler or make_sampler()
                    try:
                        sampler.generate(pending, options.sampling, collector.on_done)
                    finally:
                        collector.wait()
                    generated += len(pending)
            finally:
                bar.close()
                if sampler is not None and hasattr(sampler, "close"):
                    sampler.close()
        runs = options.out / "runs.jsonl"
        try:
            append_line(runs, json.dumps({"time": started, "argv": sys.argv[1:], "generated": generated, "vote": vote,
                                          "graders": list(graders), "seconds": round(time.time() - started, 2),
                                          "versions": package_versions()}))
        except OSError as e:
            raise HarnessError(f"{cannot_write(runs, e)}; the samples are stored: rerun the same command once "
                               "there is room") from e
    finally:
        store.close()
    print(f"{generated} samples generated in waves", file=sys.stderr)
    return vote_report(options.out, {key: samples_for(p, options) for key, p in by_key.items()})


def vote_report(run_dir: Path, budgets: dict[tuple[str, str], int]) -> str:
    """vote.md and vote.json: per benchmark, maj accuracy of the adaptive vote per grader and samples used."""
    records = [r for r in read_records(run_dir) if (r["benchmark"], str(r["problem"])) in budgets]
    by_problem: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        by_problem.setdefault((record["benchmark"], str(record["problem"])), []).append(record)
    graders = [g for g in graders_here() if any(g in (r.get("grades") or {}) for r in records)]
    result: dict[str, Any] = {}
    for (benchmark, problem), samples in sorted(by_problem.items()):
        samples.sort(key=lambda r: int(r["sample"]))
        entry = result.setdefault(benchmark, {"problems": 0, "budget": [], "used": [],
                                              **{g: [] for g in graders}})
        entry["problems"] += 1
        entry["budget"].append(budgets[(benchmark, problem)])
        entry["used"].append(len(samples))
        for grader in graders:
            entry[grader].append(majority_correct(samples, grader))
    summary = {name: {"problems": e["problems"], "n": max(e["budget"]), "mean_samples": statistics.fmean(e["used"]),
                      "share_of_n": sum(e["used"]) / sum(e["budget"]),
                      "maj": {g: statistics.fmean(e[g]) for g in graders}} for name, e in result.items()}
    head = ["Benchmark", "Problems", "n", "mean samples", "share of n", *(f"maj ({g})" for g in graders)]
    lines = ["# Adaptive vote (maj@k)", "", "Samples drawn until the Beta criterion (arXiv 2305.11860) settled the "
             "majority; avg@k and pass@k need every sample and are not computed here.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary.items():
        title = BENCHMARKS[name].title if name in BENCHMARKS else name
        lines.append(f"| {title} | {s['problems']} | {s['n']} | {s['mean_samples']:.2f} | {100 * s['share_of_n']:.1f} % | "
                     + " | ".join(f"{100 * s['maj'][g]:.1f}" for g in graders) + " |")
    markdown = "\n".join(lines) + "\n"
    replace_together({run_dir / "vote.md": lambda p: p.write_text(markdown),
                      run_dir / "vote.json": lambda p: p.write_text(json.dumps(summary, indent=1))})
    return markdown

