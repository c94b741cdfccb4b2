"""Metrics over graded samples: avg@k, unbiased pass@k (Chen et al. 2021), maj@k, spread over seeds, lengths.

Everything is a fraction in [0, 1]; the report shows percentages. maj@k follows luffy_math.vote's one tie rule:
when several answers share the most votes the first seen of them (lowest sample index) is the majority, and
``maj_ties`` counts the problems whose vote at k was such a tie, so a reader sees how much of maj@k a
tie-break decided.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from benchmarks.grading import GRADERS
from benchmarks.tasks import BENCHMARKS, MATH_BENCHMARKS


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


def majority_outcome(samples: list[dict[str, Any]], grader: str, gold: str | list[str]) -> tuple[bool, bool]:
    """(is the majority answer correct, was the vote a tie): luffy_math.vote.majority over this grader's
    extracted answers, a tie going to the tied answer seen first."""
    from luffy_math import as_boxed
    from luffy_math.vote import TIE, majority
    from luffy_math.workers import grade_one

    grades = [s["grades"].get(grader) or {} for s in samples]
    answers = [g.get("extracted") for g in grades]
    vote = majority(answers)
    tied = vote.reason == TIE
    if vote.answer is None:
        return False, tied
    for answer, g in zip(answers, grades, strict=True):
        if answer == vote.answer:  # a sample that gave the winning answer already carries its label
            return bool(g.get("correct")), tied
    return grade_one(as_boxed(vote.answer), gold, grader).correct, tied  # the vote returned a normalised form


def majority_correct(samples: list[dict[str, Any]], grader: str, gold: str | list[str]) -> bool:
    """Is the majority answer (luffy_math.majority_vote over this grader's extracted answers) correct?"""
    return majority_outcome(samples, grader, gold)[0]


def recorded_graders(records: list[dict[str, Any]]) -> list[str]:
    """The graders (GRADERS order) whose label any record carries: a run made where the environment with
    LUFFY's pins was missing has no "luffy_exact" labels, and an older harness recorded two graders only."""
    return [g for g in GRADERS if any(g in (r.get("grades") or {}) for r in records)]


def seed_metrics(records: list[dict[str, Any]], graders: Sequence[str] = GRADERS) -> dict[str, Any]:
    """Metrics of one benchmark under one seed; a sample without a grader's label (None, or none recorded)
    counts as wrong there and as ungraded."""
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_problem[str(record["problem"])].append(record)
    problems = [sorted(samples, key=lambda r: int(r["sample"])) for samples in by_problem.values()]
    n = min(len(p) for p in problems)
    ks = k_values(n)
    out: dict[str, Any] = {"problems": len(problems), "samples_per_problem": n, "samples": len(records)}
    for grader in graders:
        labels = [[bool((s["grades"].get(grader) or {}).get("correct")) for s in p] for p in problems]
        votes = {k: [majority_outcome(p[:k], grader, p[0]["gold"]) for p in problems] for k in ks}
        out[grader] = {
            "avg": statistics.fmean(statistics.fmean(ls) for ls in labels),
            "pass": {k: statistics.fmean(pass_at_k(len(ls), sum(ls), k) for ls in labels) for k in ks},
            "maj": {k: statistics.fmean(correct for correct, _ in votes[k]) for k in ks},
            "maj_ties": {k: sum(tied for _, tied in votes[k]) for k in ks},
            "formatted": statistics.fmean(bool((s["grades"].get(grader) or {}).get("formatted"))
                                          for s in records),
            "timed_out": sum(bool((s["grades"].get(grader) or {}).get("timed_out")) for s in records),
            "ungraded": sum(s["grades"].get(grader) is None for s in records),
        }
    lengths = [r["completion_tokens"] for r in records if r.get("completion_tokens") is not None]
    out["truncation_rate"] = statistics.fmean(r.get("finish_reason") == "length" for r in records)
    out["length"] = ({"mean": statistics.fmean(lengths), "median": statistics.median(lengths), "max": max(lengths)}
                     if lengths else None)
    return out


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
    grouped: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        grouped[record["benchmark"]][int(record.get("seed", 0))].append(record)
    order = [b for b in BENCHMARKS if b in grouped] + sorted(b for b in grouped if b not in BENCHMARKS)
    benchmarks: dict[str, Any] = {}
    for name in order:
        seeds = sorted(grouped[name])
        per_seed = {s: seed_metrics(grouped[name][s], graders) for s in seeds}
        first = per_seed[seeds[0]]
        entry: dict[str, Any] = {"seeds": seeds, "problems": first["problems"],
                                 "samples_per_problem": min(m["samples_per_problem"] for m in per_seed.values()),
                                 "truncation_rate": spread([m["truncation_rate"] for m in per_seed.values()]),
                                 "length": first["length"] if len(seeds) == 1 else None}
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
        if len(seeds) > 1:
            lengths = [r["completion_tokens"] for s in seeds for r in grouped[name][s]
                       if r.get("completion_tokens") is not None]
            entry["length"] = ({"mean": statistics.fmean(lengths), "median": statistics.median(lengths),
                                "max": max(lengths)} if lengths else None)
        benchmarks[name] = entry
    return {"graders": graders, "benchmarks": benchmarks, "avg": average(benchmarks, grouped, graders)}


def average(benchmarks: dict[str, Any], grouped: dict[str, dict[int, list[dict[str, Any]]]],
            graders: Sequence[str]) -> dict[str, Any] | None:
    """"Avg.": the unweighted mean of the six math benchmarks' avg@k, per seed; None unless all six are here."""
    if not all(b in benchmarks for b in MATH_BENCHMARKS):
        return None
    seeds = sorted(set.intersection(*(set(grouped[b]) for b in MATH_BENCHMARKS)))
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
