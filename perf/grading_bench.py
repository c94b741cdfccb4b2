"""Throughput of luffy_math.workers.grade_many (worker processes) against a plain sequential loop over grade.

Grades every row of LUFFY's valid.all.parquet (6023 rows) under several response shapes, in each mode, and
prints items/s, the speed-up and how many items ran out of time. A speed figure, never a test.

    python perf/grading_bench.py                      # full run (slow: tens of minutes)
    python perf/grading_bench.py --rows 300 --modes luffy
    python perf/grading_bench.py --modes luffy_exact --against luffy   # a mode's cost against another

"speedup" is the median of the per-round ratios ("of totals": summed times). The rounds are random subsets
(each kept in input order) so each has about the same mix; which side goes first alternates. grade_many's time
includes starting its workers in the first round (about 1 s), as a caller pays it; later rounds find them
warm, as later calls in one process do (grade_many keeps its pool between calls). On a machine
that other people's processes saturate, Linux's autogroup scheduling gives this benchmark's processes one
share together, however many there are, so no speed-up can show: "load" (the 1-minute load average at the
end of a mode) says how busy the machine was, and "ceiling" is the speed-up that the same number of processes
got on a pure CPU loop just before the mode ran (2.0 on 2 idle cores). "seq cpu ms/item" is the CPU cost of
one grade() call.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from luffy_math.thinking import THINK_END, THINK_OPEN

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "luffy" / "valid.all.parquet"
REASONING = (f"{THINK_OPEN}First, set up the equations. Then check the cases one by one; the constraint rules out the "
             f"rest.\n{THINK_END}\n\n")
VARIANTS = ("correct", "wrong", "repeated", "unboxed")


@dataclass
class Result:
    mode: str
    items: int
    workers: int
    rounds: int
    sequential_s: float
    pool_s: float
    sequential_items_per_s: float
    pool_items_per_s: float
    speedup: float  # median of the per-round ratios
    speedup_of_totals: float
    round_speedups: list[float]
    sequential_cpu_ms_per_item: float
    sequential_timeouts: int
    pool_timeouts: int
    labels_agree: bool
    load_average: float
    ceiling: float  # speed-up a pure CPU loop got from the same number of processes, just before


def _burn(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def parallel_ceiling(workers: int, iterations: int = 10_000_000) -> float:
    """Speed-up that ``workers`` processes get on a pure CPU loop right now: what the machine lets us have."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_burn, [1] * workers))  # start the processes first
        start = time.perf_counter()
        for _ in range(workers):
            _burn(iterations)
        alone = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(_burn, [iterations] * workers))
        together = time.perf_counter() - start
    return round(alone / together, 2)


def respond(variant: str, gold: str, other_gold: str) -> str:
    """One response of the given shape to a problem whose gold answer is ``gold``."""
    if variant == "correct":
        return f"{REASONING}The final answer is $\\boxed{{{gold}}}$."
    if variant == "wrong":
        return f"{REASONING}The final answer is $\\boxed{{{other_gold}}}$."
    if variant == "repeated":  # R1-style: the same box twice, near each other
        return f"{REASONING}So we get $\\boxed{{{gold}}}$.\n\n**Final Answer**\n\\boxed{{{gold}}}"
    if variant == "unboxed":
        return f"{REASONING}So the answer is {gold}."
    raise ValueError(f"unknown variant {variant!r}")


def build_items(data: Path, rows: int | None, variants: list[str], seed: int) -> list[tuple[str, str]]:
    import pandas as pd

    golds = [row["ground_truth"] for row in pd.read_parquet(data, columns=["reward_model"])["reward_model"]]
    if rows is not None:
        golds = random.Random(seed).sample(golds, min(rows, len(golds)))  # a sample across all sources
    shuffled = random.Random(seed + 1).sample(golds, len(golds))
    return [(respond(variant, gold, other), gold) for gold, other in zip(golds, shuffled, strict=True)
            for variant in variants]


def time_sequential(part: list[tuple[str, str]], mode: str, timeout: float) -> tuple[list, float, float]:
    """A plain loop over grade_one() (grade() in this process; "luffy_exact" one item at a time in its workers):
    (grades, wall seconds, CPU seconds)."""
    from tqdm import tqdm

    from luffy_math.workers import grade_one

    wall, cpu = time.perf_counter(), time.process_time()
    grades = [grade_one(response, gold, mode=mode, timeout=timeout)  # type: ignore[arg-type]
              for response, gold in tqdm(part, desc=f"sequential ({mode})", unit="item")]
    return grades, time.perf_counter() - wall, time.process_time() - cpu


def time_pool(part: list[tuple[str, str]], mode: str, workers: int, timeout: float) -> tuple[list, float]:
    """grade_many() (including starting its workers where no earlier call left them): (grades, wall seconds)."""
    from luffy_math.workers import grade_many

    wall = time.perf_counter()
    grades = grade_many(part, mode=mode, workers=workers, timeout=timeout, progress=True)
    return grades, time.perf_counter() - wall


def run(mode: str, items: list[tuple[str, str]], workers: int, timeout: float, rounds: int) -> Result:
    """Time both ways over ``rounds`` random subsets (each in input order, all with about the same mix),
    alternating which goes first, so that load from other processes hits both alike; the speed-up is the
    median of the per-round ratios."""
    ceiling = parallel_ceiling(workers)
    sequential: list = [None] * len(items)
    pooled: list = [None] * len(items)
    sequential_s = pool_s = sequential_cpu = 0.0
    ratios = []
    shuffled = random.Random(0).sample(range(len(items)), len(items))
    for index in range(rounds):
        positions = sorted(shuffled[index::rounds])  # a random subset, kept in input order
        part = [items[p] for p in positions]
        if index % 2 == 0:
            seq_grades, seq_round, cpu = time_sequential(part, mode, timeout)
            pool_grades, pool_round = time_pool(part, mode, workers, timeout)
        else:
            pool_grades, pool_round = time_pool(part, mode, workers, timeout)
            seq_grades, seq_round, cpu = time_sequential(part, mode, timeout)
        for p, seq_grade, pool_grade in zip(positions, seq_grades, pool_grades, strict=True):
            sequential[p], pooled[p] = seq_grade, pool_grade
        sequential_s += seq_round
        pool_s += pool_round
        sequential_cpu += cpu
        ratios.append(round(seq_round / pool_round, 2))
        print(f"round {index + 1}/{rounds}: sequential {seq_round:.1f} s, grade_many {pool_round:.1f} s, "
              f"×{ratios[-1]}", flush=True)
    return Result(
        mode=mode, items=len(items), workers=workers, rounds=rounds, sequential_s=round(sequential_s, 1),
        pool_s=round(pool_s, 1), sequential_items_per_s=round(len(items) / sequential_s, 1),
        pool_items_per_s=round(len(items) / pool_s, 1), speedup=round(statistics.median(ratios), 2),
        speedup_of_totals=round(sequential_s / pool_s, 2), round_speedups=ratios,
        sequential_cpu_ms_per_item=round(sequential_cpu / len(items) * 1e3, 2),
        sequential_timeouts=sum(g.timed_out for g in sequential), pool_timeouts=sum(g.timed_out for g in pooled),
        labels_agree=[g.correct for g in sequential] == [g.correct for g in pooled],
        load_average=round(os.getloadavg()[0], 1), ceiling=ceiling,
    )


@dataclass
class Against:
    mode: str
    base: str
    items: int
    workers: int
    mode_items_per_s: float
    base_items_per_s: float
    ratio: float  # median of the per-round ratios of items/s, mode / base
    round_ratios: list[float]
    timeouts: int
    base_timeouts: int
    labels_differ: int
    load_average: float


def run_against(mode: str, base: str, items: list[tuple[str, str]], workers: int, timeout: float,
                rounds: int) -> Against:
    """grade_many in ``mode`` and in ``base`` over the same random subsets, alternating which goes first: what
    one mode costs against the other (e.g. "luffy_exact", graded in another environment's workers, against
    "luffy")."""
    graded: dict[str, list] = {mode: [None] * len(items), base: [None] * len(items)}
    seconds = {mode: 0.0, base: 0.0}
    ratios = []
    shuffled = random.Random(0).sample(range(len(items)), len(items))
    for index in range(rounds):
        positions = sorted(shuffled[index::rounds])
        part = [items[p] for p in positions]
        took = {}
        for which in ((mode, base) if index % 2 == 0 else (base, mode)):
            grades, took[which] = time_pool(part, which, workers, timeout)
            for p, g in zip(positions, grades, strict=True):
                graded[which][p] = g
            seconds[which] += took[which]
        ratios.append(round(took[base] / took[mode], 2))
        print(f"round {index + 1}/{rounds}: {mode} {took[mode]:.1f} s, {base} {took[base]:.1f} s, "
              f"items/s ratio {ratios[-1]}", flush=True)
    return Against(
        mode=mode, base=base, items=len(items), workers=workers,
        mode_items_per_s=round(len(items) / seconds[mode], 1), base_items_per_s=round(len(items) / seconds[base], 1),
        ratio=round(statistics.median(ratios), 2), round_ratios=ratios,
        timeouts=sum(g.timed_out for g in graded[mode]), base_timeouts=sum(g.timed_out for g in graded[base]),
        labels_differ=sum(a.correct != b.correct for a, b in zip(graded[mode], graded[base], strict=True)),
        load_average=round(os.getloadavg()[0], 1))


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], [r.sequential_items_per_s for r in results], 0.4, label="sequential grade()")
    ax.bar([x + 0.2 for x in xs], [r.pool_items_per_s for r in results], 0.4,
           label=f"grade_many, {results[0].workers} workers")
    ax.set_xticks(list(xs), [f"{r.mode}\n×{r.speedup}" for r in results])
    ax.set_ylabel("items / s")
    ax.set_ylim(0, 1.35 * max(r.pool_items_per_s for r in results))  # room for the legend
    ax.set_title(f"luffy_math grading throughput ({results[0].items} items per mode)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    from luffy_math.workers import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LUFFY's valid.all.parquet")
    parser.add_argument("--rows", type=int, default=None, help="grade a random sample of this many rows")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--modes", default="luffy,math_verify", help="comma-separated grading modes")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per item")
    parser.add_argument("--rounds", type=int, default=6,
                        help="alternate sequential and pooled runs over this many interleaved subsets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", default=None,
                        help="instead of sequential against pooled: grade_many in each of --modes against this mode")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot", type=Path, help="also draw items/s per mode into this PNG")
    args = parser.parse_args(argv)

    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not args.data.exists():
        parser.error(f"no such file: {args.data}")
    items = build_items(args.data, args.rows, variants, args.seed)
    print(f"{len(items)} items ({len(items) // len(variants)} rows × {len(variants)} variants), "
          f"{args.workers} workers, timeout {args.timeout:g} s", flush=True)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.against:
        pairs = [run_against(mode, args.against, items, args.workers, args.timeout, args.rounds)
                 for mode in args.modes.split(",") if mode]
        for r in pairs:
            print(f"{r.mode}: {r.mode_items_per_s} items/s, {r.base}: {r.base_items_per_s} items/s, ratio (median of "
                  f"rounds) {r.ratio} {r.round_ratios}; timeouts {r.timeouts}/{r.base_timeouts}; labels differ on "
                  f"{r.labels_differ}; load {r.load_average}")
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in pairs], indent=1) + "\n")
        return 0
    results = [run(mode, items, args.workers, args.timeout, args.rounds) for mode in args.modes.split(",") if mode]
    print(f"\n{'mode':<12}{'items':>7}{'seq s':>8}{'seq it/s':>10}{'pool s':>8}{'pool it/s':>11}{'speedup':>9}"
          f"{'of totals':>11}{'seq cpu ms/item':>17}{'timeouts seq/pool':>19}{'labels agree':>14}{'load':>6}"
          f"{'ceiling':>9}")
    for r in results:
        print(f"{r.mode:<12}{r.items:>7}{r.sequential_s:>8}{r.sequential_items_per_s:>10}{r.pool_s:>8}"
              f"{r.pool_items_per_s:>11}{r.speedup:>9}{r.speedup_of_totals:>11}"
              f"{r.sequential_cpu_ms_per_item:>17}"
              f"{f'{r.sequential_timeouts}/{r.pool_timeouts}':>19}{str(r.labels_agree):>14}{r.load_average:>6}"
              f"{r.ceiling:>9}")
    if len(results) > 1:
        sequential_s, pool_s = sum(r.sequential_s for r in results), sum(r.pool_s for r in results)
        print(f"all modes: {sum(r.items for r in results)} items, sequential {sequential_s:.1f} s, grade_many "
              f"{pool_s:.1f} s, ×{sequential_s / pool_s:.2f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
