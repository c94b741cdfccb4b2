"""Metrics over graded samples: avg@k, unbiased pass@k (Chen et al. 2021), maj@k, spread over seeds, lengths.

Everything is a fraction in [0, 1]; the report shows percentages. maj@k follows luffy_math.vote's one tie rule:
when several answers share the most votes the first seen of them (lowest sample index) is the majority, and
``maj_ties`` counts the problems whose vote at k was such a tie, so a reader sees how much of maj@k a
tie-break decided. The samples and their labels come from the run's labels table (:mod:`benchmarks.labels`);
maj@k's verdict is the recorded label of the winning answer's first sample, so computing metrics grades nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import pandas as pd

from benchmarks.grading import GRADERS
from benchmarks.labels import labels_table, per_sample, recorded_graders
from benchmarks.tasks import MATH_BENCHMARKS
from luffy_math.vote import TIE, majority


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n, c of them correct, is correct)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def k_values(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [2**i for i in range(n.bit_length()) if 2**i <= n]
    return ks + ([n] if ks[-1] != n else [])


def majority_outcome(answers: Sequence[str | None], labels: Sequence[bool]) -> tuple[bool, bool]:
    """(is the majority answer correct, was the vote a tie) of samples' extracted answers and their labels:
    luffy_math.vote.majority, a tie going to the tied answer seen first. The vote's answer is the first member
    of its group of answers, a sample's own answer, so that sample's label is the majority's: nothing is graded."""
    vote = majority(answers)
    tied = vote.reason == TIE
    if vote.answer is None:
        return False, tied
    return labels[list(answers).index(vote.answer)], tied


def majority_correct(samples: list[dict[str, Any]], grader: str) -> bool:
    """Is the majority answer over these records' ``grader`` answers (in the order given) correct?"""
    grades = [s["grades"].get(grader) or {} for s in samples]
    return majority_outcome([g.get("extracted") for g in grades], [bool(g.get("correct")) for g in grades])[0]


def seed_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """Metrics of one benchmark under one seed, from its rows of the labels table (:mod:`benchmarks.labels`); a
    sample without a grader's label counts as wrong there and as ungraded."""
    samples = per_sample(table)
    sizes = samples.groupby("problem", sort=False).size()
    n = int(sizes.min())
    ks = k_values(n)
    out: dict[str, Any] = {"problems": len(sizes), "samples_per_problem": n, "samples": len(samples)}
    for grader, rows in table.groupby("grader", observed=True):
        problems = [(p["correct"].tolist(), p["extracted"].tolist()) for _, p in rows.groupby("problem", sort=False)]
        votes = {k: [majority_outcome(answers[:k], labels[:k]) for labels, answers in problems] for k in ks}
        out[str(grader)] = {
            "avg": statistics.fmean(statistics.fmean(labels) for labels, _ in problems),
            "pass": {k: statistics.fmean(pass_at_k(len(labels), sum(labels), k) for labels, _ in problems)
                     for k in ks},
            "maj": {k: statistics.fmean(correct for correct, _ in votes[k]) for k in ks},
            "maj_ties": {k: sum(tied for _, tied in votes[k]) for k in ks},
            "formatted": statistics.fmean(rows["formatted"].tolist()),
            "timed_out": int(rows["timed_out"].sum()),
            "ungraded": int((~rows["graded"]).sum()),
        }
    out["truncation_rate"] = statistics.fmean(samples["truncated"].tolist())
    out["length"] = length(samples)
    return out


def length(samples: pd.DataFrame) -> dict[str, Any] | None:
    """Mean, median and max completion tokens of the samples that recorded them (None if none did)."""
    tokens = samples["tokens"].dropna().astype("int64").tolist()
    return {"mean": statistics.fmean(tokens), "median": statistics.median(tokens), "max": max(tokens)} if tokens else None


def spread(values: list[float]) -> dict[str, Any]:
    """Mean over seeds, and the sample standard deviation when there are several seeds."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "per_seed": values}


def compute(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per benchmark (paper order first) and per recorded grader (``"graders"``, GRADERS order): each metric's
    mean and std over seeds, and Avg."""
    if any(isinstance(r.get("vote"), dict) for r in records):
        raise ValueError("these samples come from an adaptive vote (--vote adaptive): avg@k and pass@k need all n "
                         "samples of every problem and are not computed from them; its maj@k is in vote.md")
    missing = [r for r in records if "grades" not in r]
    if missing:
        raise ValueError(f"{len(missing)} samples are not graded yet (run `python -m benchmarks score`)")
    graders = recorded_graders(records)
    if not graders:
        raise ValueError(f"no sample carries a label of {', '.join(GRADERS)} (run `python -m benchmarks score`)")
    table = labels_table(records, graders)
    benchmarks: dict[str, Any] = {}
    for name, rows in table.groupby("benchmark", observed=True):  # the paper's order: an ordered categorical
        per_seed = {int(seed): seed_metrics(of_seed) for seed, of_seed in rows.groupby("seed")}
        seeds = list(per_seed)
        first = per_seed[seeds[0]]
        entry: dict[str, Any] = {"seeds": seeds, "problems": first["problems"],
                                 "samples_per_problem": min(m["samples_per_problem"] for m in per_seed.values()),
                                 "truncation_rate": spread([m["truncation_rate"] for m in per_seed.values()]),
                                 "length": first["length"] if len(seeds) == 1 else length(per_sample(rows))}
        common_ks = sorted(set.intersection(*(set(m[graders[0]]["pass"]) for m in per_seed.values())))
        for grader in graders:
            g = [m[grader] for m in per_seed.values()]
            entry[grader] = {
                "avg": spread([x["avg"] for x in g]),
                "pass": {str(k): spread([x["pass"][k] for x in g]) for k in common_ks},
                "maj": {str(k): spread([x["maj"][k] for x in g]) for k in common_ks},
                # problems (summed over seeds) whose maj@k vote was a tie, decided by the first-seen rule
                "maj_ties": {str(k): sum(x["maj_ties"][k] for x in g) for k in common_ks},
                "formatted": spread([x["formatted"] for x in g]),
                "timed_out": sum(x["timed_out"] for x in g),
                "ungraded": sum(x["ungraded"] for x in g),
            }
        benchmarks[str(name)] = entry
    return {"graders": graders, "benchmarks": benchmarks, "avg": average(benchmarks, graders)}


def average(benchmarks: dict[str, Any], graders: Sequence[str]) -> dict[str, Any] | None:
    """"Avg.": the unweighted mean of the six math benchmarks' avg@k, per seed; None unless all six are here."""
    if not all(b in benchmarks for b in MATH_BENCHMARKS):
        return None
    seeds = sorted(set.intersection(*(set(benchmarks[b]["seeds"]) for b in MATH_BENCHMARKS)))
    if not seeds:
        return None
    out = {}
    for grader in graders:
        per_seed = []
        for seed in seeds:
            per_seed.append(statistics.fmean(
                benchmarks[b][grader]["avg"]["per_seed"][benchmarks[b]["seeds"].index(seed)] for b in MATH_BENCHMARKS))
        out[grader] = spread(per_seed)
    return out
