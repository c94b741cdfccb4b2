"""`replay`: what an adaptive vote would have saved on a recorded run.

For every problem of a run recorded with n samples, the stopping rule of the adaptive vote
(:func:`luffy_math.vote.samples_used`, Adaptive-Consistency's Beta criterion) is replayed over many random
orders of those n samples, at several confidences. Per benchmark it reports the mean number of samples the
vote used and how often its answer agrees with the full n-sample majority of the same order (the vote over
all n, ties to the answer seen first), plus both votes' accuracy where the samples were graded. Answers are
grouped once per problem by LUFFY's equivalence (:func:`luffy_math.vote.vote_labels`) over all n samples.
Writes replay.md, replay.json and replay.png (samples used against agreement, one line per benchmark).
"""

from __future__ import annotations

import json
import random
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.problems import HarnessError
from benchmarks.store import read_records, replace_together, require_fields
from luffy_math.vote import samples_used, vote_labels

CONFIDENCES = (0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Problem:
    """One recorded problem: its samples' group labels (None: no answer) and whether each group is correct."""

    benchmark: str
    labels: list[int | None]
    correct: dict[int, bool]


def first_leader(labels: Sequence[int | None]) -> int | None:
    """The largest group among ``labels``; a tie goes to the group seen first (as luffy_math's vote)."""
    counts: dict[int, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None  # dicts keep first-seen order


def load_problems(path: Path, grader: str, progress: bool = True) -> list[Problem]:
    """The run's problems with at least two samples, grouped by ``grader``'s extracted answers."""
    records = read_records(path)
    if not records:
        raise HarnessError(f"{path}: no samples to replay")
    require_fields(records, ("benchmark", "problem", "sample"), path)
    by_problem: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_problem[(record["benchmark"], int(record.get("seed", 0)), str(record["problem"]))].append(record)
    problems = []
    for (benchmark, _, _), samples in tqdm(sorted(by_problem.items()), desc="grouping answers", unit="problem",
                                           disable=not progress, dynamic_ncols=True):
        if len(samples) < 2:
            continue
        samples.sort(key=lambda r: int(r["sample"]))
        grades = [(r.get("grades") or {}).get(grader) or {} for r in samples]
        answers = [g.get("extracted", r.get("extracted")) for g, r in zip(grades, samples, strict=True)]
        labels = vote_labels(answers)
        correct = {label: bool(g.get("correct")) for label, g in zip(labels, grades, strict=True)
                   if label is not None}
        problems.append(Problem(benchmark, labels, correct))
    if not problems:
        raise HarnessError(f"{path}: no problem has two or more samples: nothing to vote on")
    return problems


def replay_problem(problem: Problem, confidences: Sequence[float], orders: int, rng: random.Random
                   ) -> dict[float, tuple[float, float, float, float]]:
    """Per confidence, over ``orders`` random orders: (mean samples used, agreement with the full vote,
    accuracy of the adaptive vote, accuracy of the full vote)."""
    sums = {c: [0.0, 0.0, 0.0, 0.0] for c in confidences}
    labels = list(problem.labels)
    for _ in range(orders):
        rng.shuffle(labels)
        full = first_leader(labels)
        for confidence in confidences:
            used = samples_used(labels, confidence)
            mine = first_leader(labels[:used])
            total = sums[confidence]
            total[0] += used
            total[1] += mine == full
            total[2] += problem.correct.get(mine, False) if mine is not None else False
            total[3] += problem.correct.get(full, False) if full is not None else False
    return {c: (s[0] / orders, s[1] / orders, s[2] / orders, s[3] / orders) for c, s in sums.items()}


def replay(problems: Sequence[Problem], confidences: Sequence[float] = CONFIDENCES, orders: int = 200,
           seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Per benchmark and confidence: problems, n, mean samples used (and its share of n), agreement with the
    full vote, and both votes' accuracy."""
    rng = random.Random(seed)
    per: dict[str, list[tuple[int, dict[float, tuple[float, float, float, float]]]]] = defaultdict(list)
    for problem in tqdm(problems, desc="replaying", unit="problem", disable=not progress, dynamic_ncols=True):
        per[problem.benchmark].append((len(problem.labels), replay_problem(problem, confidences, orders, rng)))
    result: dict[str, Any] = {"orders": orders, "seed": seed, "confidences": list(confidences), "benchmarks": {}}
    for benchmark, rows in per.items():
        ns = [n for n, _ in rows]
        entry: dict[str, Any] = {"problems": len(rows), "n": min(ns) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}",
                                 "by_confidence": {}}
        for c in confidences:
            used = statistics.fmean(r[c][0] for _, r in rows)
            entry["by_confidence"][str(c)] = {
                "mean_samples": used,
                "share_of_n": statistics.fmean(r[c][0] / n for n, r in rows),
                "agreement": statistics.fmean(r[c][1] for _, r in rows),
                "accuracy_adaptive": statistics.fmean(r[c][2] for _, r in rows),
                "accuracy_full": statistics.fmean(r[c][3] for _, r in rows),
            }
        result["benchmarks"][benchmark] = entry
    return result


def table(result: dict[str, Any]) -> list[str]:
    head = ["Benchmark", "Problems", "n", "confidence", "mean samples", "share of n", "agreement with full vote",
            "maj acc. adaptive", "maj acc. full"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in result["benchmarks"].items():
        for c, row in entry["by_confidence"].items():
            lines.append(f"| {name} | {entry['problems']} | {entry['n']} | {c} | {row['mean_samples']:.2f} | "
                         f"{100 * row['share_of_n']:.1f} % | {100 * row['agreement']:.2f} % | "
                         f"{100 * row['accuracy_adaptive']:.1f} % | {100 * row['accuracy_full']:.1f} % |")
    return lines


def chart(result: dict[str, Any], path: Path, caption: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, entry in result["benchmarks"].items():
        rows = entry["by_confidence"]
        xs = [100 * rows[str(c)]["share_of_n"] for c in result["confidences"]]
        ys = [100 * rows[str(c)]["agreement"] for c in result["confidences"]]
        ax.plot(xs, ys, marker="o", label=name)
        for c, x, y in zip(result["confidences"], xs, ys, strict=True):
            ax.annotate(str(c), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("samples used (% of n), mean over problems and orders")
    ax.set_ylabel("agreement with the full-n majority (%)")
    ax.set_title("Adaptive vote (Beta criterion) replayed; points labelled by confidence", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, caption, fontsize=7, alpha=0.7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_replay(path: Path, out: Path | None = None, confidences: Sequence[float] = CONFIDENCES, orders: int = 200,
               seed: int = 0, grader: str = "luffy", progress: bool = True) -> tuple[str, Path]:
    """Replay the run at ``path``; write replay.md/.json/.png under ``out`` (default RUN/replay)."""
    problems = load_problems(path, grader, progress)
    result = replay(problems, confidences, orders, seed, progress)
    out = out or (path if path.is_dir() else path.parent) / "replay"
    out.mkdir(parents=True, exist_ok=True)
    caption = f"{path} · grader {grader} · {orders} random orders per problem · seed {seed}"
    markdown = "\n".join([
        "# Adaptive vote replay", "",
        f"Run: `{path}`; answers by the `{grader}` grader; {orders} random orders of each problem's samples "
        f"(seed {seed}); stopping rule: Adaptive-Consistency's Beta criterion (arXiv 2305.11860).", "",
        *table(result), ""])
    replace_together({
        out / "replay.md": lambda p: p.write_text(markdown),
        out / "replay.json": lambda p: p.write_text(json.dumps({**result, "run": str(path), "grader": grader},
                                                               indent=1)),
        out / "replay.png": lambda p: chart(result, p, caption),
    })
    return markdown, out
