"""Compare runs: per benchmark and grader, each run's avg@k and its difference to the first run, with a paired
bootstrap 95% interval, the problems that flipped, the six-benchmark Avg., and published rows beside them.

Pairing: a benchmark is compared over the problems both runs hold (the same problem ids, the same dataset:
two runs whose samples come from another dataset variant are not compared). A problem's score in one seed is
its avg@k (the mean label of its samples); a run's score is the mean over its seeds, then over problems.

The interval: each resample draws the problems with replacement (the same draw for both runs: paired), and
each run's seeds with replacement (one draw per resample for the whole run, as a seed is a run-wide
setting); the 2.5th and 97.5th percentiles of the resampled differences. The Avg.'s interval averages the six
benchmarks' resampled differences, resample by resample. Seeded, so the same inputs give the same figures.

A problem flips when its score crosses one half (with one sample: right in one run, wrong in the other).

Graders: those every compared run recorded, in GRADERS order ("luffy_exact" only where each run was graded
beside the environment with LUFFY's pins); flips, published rows and the chart use the first ("luffy").

Published rows measured otherwise than a run (temperature, top_p, max_tokens, samples per problem, a subset of
the problems) carry a marker, in the table and the chart, and a footnote saying what differs.
"""

from __future__ import annotations

import json
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.grading import GRADERS
from benchmarks.labels import labels_table, per_sample, recorded_graders
from benchmarks.problems import HarnessError
from benchmarks.published import PublishedRow, Settings
from benchmarks.report import config_order, run_metadata, title
from benchmarks.store import read_records, replace_together, require_fields
from benchmarks.tasks import MATH_BENCHMARKS

DEFAULT_RESAMPLES = 2000
FLIPS_SHOWN = 20  # problem ids per direction in compare.md (compare.json has all)


@dataclass
class Run:
    """One run: its labels table (:mod:`benchmarks.labels`: a row per sample and grader it recorded, ``graders``
    in GRADERS order) and how its samples were made."""

    name: str
    path: Path
    labels: pd.DataFrame
    datasets: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # benchmark -> (variant, data)
    graders: list[str] = field(default_factory=lambda: list(GRADERS))
    configs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # benchmark -> the configs its samples used
    limit: str | None = None  # the --limit the run was last made with, as runs.jsonl recorded it

    @cached_property
    def _samples(self) -> pd.Series:
        """Each (benchmark, problem, seed)'s number of samples."""
        return per_sample(self.labels).groupby(["benchmark", "problem", "seed"], observed=True).size()

    @cached_property
    def _seeds(self) -> dict[str, list[int]]:
        """Per benchmark, the seeds that hold every one of its problems."""
        counts = self._samples.reset_index()
        problems = counts.groupby("benchmark", observed=True)["problem"].nunique()
        holding = counts.groupby(["benchmark", "seed"], observed=True)["problem"].nunique()
        return {str(b): [int(seed) for seed, n in holding.loc[b].items() if n == problems[b]] for b in problems.index}

    @cached_property
    def _scores(self) -> pd.DataFrame:
        """(benchmark, grader, seed) x problem: each problem's score in one seed, the mean label of its samples."""
        grouped = self.labels.groupby(["benchmark", "grader", "seed", "problem"], observed=True)["correct"]
        return grouped.mean().unstack("problem")

    def benchmarks(self) -> list[str]:
        """The run's benchmarks, in the paper's order."""
        return list(self._seeds)

    def has(self, benchmark: str) -> bool:
        return benchmark in self._seeds

    def problems(self, benchmark: str) -> list[str]:
        """The benchmark's problem ids, sorted as text (the order the bootstrap draws from)."""
        return sorted(self._samples.loc[benchmark].index.unique("problem"))

    def problem_count(self, benchmark: str) -> int:
        return len(self.problems(benchmark))

    def samples_per_problem(self, benchmark: str) -> tuple[int, int]:
        """(samples per problem in one seed, seeds): the most any problem has."""
        return int(self._samples.loc[benchmark].max()), len(self.seeds(benchmark))

    def seeds(self, benchmark: str) -> list[int]:
        return self._seeds[benchmark]

    def score(self, benchmark: str, grader: str) -> float:
        """avg@k over all of this run's problems and seeds."""
        return float(self.matrix(benchmark, grader, self.problems(benchmark)).mean())

    def matrix(self, benchmark: str, grader: str, problems: list[str]) -> np.ndarray:
        """seeds x problems: each problem's avg@k in each seed."""
        scores = self._scores.loc[(benchmark, grader)].loc[self.seeds(benchmark), problems]
        return np.ascontiguousarray(scores.to_numpy(dtype=float))


def load_run(path: Path, name: str) -> Run:
    records = read_records(path)
    if not records:
        raise HarnessError(f"{path}: no samples to compare")
    require_fields(records, ("benchmark", "problem", "sample"), path)
    ungraded = sum("grades" not in r for r in records)
    if ungraded:
        raise HarnessError(f"{path}: {ungraded} samples are not graded yet (run `python -m benchmarks score {path}`)")
    graders = recorded_graders(records)
    if not graders:
        raise HarnessError(f"{path}: no sample carries a label of {', '.join(GRADERS)} "
                           f"(run `python -m benchmarks score {path}`)")
    meta = run_metadata(path if path.is_dir() else path.parent)
    datasets: dict[str, tuple[str | None, str | None]] = {}
    used: dict[str, set[str]] = defaultdict(set)
    for record in records:
        config = meta["configs"].get(record.get("config_hash"), {})
        datasets.setdefault(record["benchmark"], (config.get("variant"), config.get("data")))
        used[record["benchmark"]].add(record.get("config_hash"))
    configs = {b: sorted((meta["configs"].get(h) or {} for h in hashes), key=config_order) for b, hashes in used.items()}
    return Run(name, path, labels_table(records, graders), datasets, graders, configs, recorded_limit(meta["runs"]))


def recorded_limit(invocations: list[dict[str, Any]]) -> str | None:
    """The ``--limit`` of the latest invocation in runs.jsonl that names one."""
    for entry in reversed(invocations):
        argv = [str(a) for a in entry.get("argv") or []]
        for i, arg in enumerate(argv):
            if arg == "--limit" and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith("--limit="):
                return arg.partition("=")[2]
    return None


def _same(value: Any, published: float) -> bool:
    try:
        return abs(float(value) - published) < 1e-9
    except (TypeError, ValueError):
        return False


def setting_differences(run: Run, settings: Settings) -> list[str]:
    """How ``run`` was made otherwise than a published row was measured (over the math benchmarks the run
    holds), one phrase per setting: sampling, samples per problem, a subset of the problems. Empty when none."""
    benchmarks = [b for b in MATH_BENCHMARKS if run.has(b)]
    configs = [c for b in benchmarks for c in run.configs.get(b, [{}])]
    out = []
    for key in ("temperature", "top_p", "max_tokens"):
        published = getattr(settings, key)
        values = list(dict.fromkeys(c.get(key) for c in configs))
        if any(not _same(v, published) for v in values):
            shown = ", ".join("not recorded" if v is None else str(v) for v in values)
            out.append(f"{key} {shown} (published {published})")
    samples, subsets = [], []
    for benchmark in benchmarks:
        n, seeds = run.samples_per_problem(benchmark)
        if n * seeds != settings.n[benchmark]:
            samples.append(f"{title(benchmark)} {n}" + (f"×{seeds} seeds" if seeds > 1 else "")
                           + f"/{settings.n[benchmark]}")
        if run.problem_count(benchmark) != settings.problems[benchmark]:
            subsets.append(f"{title(benchmark)} {run.problem_count(benchmark)}/{settings.problems[benchmark]}")
    if samples:
        out.append("samples per problem, run/published: " + ", ".join(samples))
    if subsets:
        limit = f" (--limit {run.limit})" if run.limit else ""
        out.append(f"problems, run/published{limit}: " + ", ".join(subsets))
    return out


MARKERS = "†‡§¶"


@dataclass
class Flag:
    """A footnote shared by the published rows measured otherwise than the runs, in the same way."""

    marker: str
    settings: Settings
    differences: dict[str, list[str]]  # run name -> what differs
    rows: list[str] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)  # where the rows' settings are stated

    def text(self) -> str:
        runs: dict[tuple[str, ...], list[str]] = {}
        for name, what in self.differences.items():
            runs.setdefault(tuple(what), []).append(f"`{name}`")
        said = " ".join(f"{', '.join(names)}: {'; '.join(what)}." for what, names in runs.items())
        return (f"{self.marker} Measured otherwise than the runs. {said} Published: {self.settings.describe()} "
                f"({'; '.join(self.bases)}).")


def flag_rows(runs: Sequence[Run], references: Sequence[PublishedRow]) -> dict[str, Flag]:
    """Published row label -> its flag, for every row measured otherwise than at least one run."""
    flags: dict[str, Flag] = {}
    by_key: dict[tuple, Flag] = {}
    for row in references:
        differences = {run.name: what for run in runs if (what := setting_differences(run, row.settings))}
        if not differences:
            continue
        key = (row.settings.describe(), tuple((name, tuple(what)) for name, what in differences.items()))
        if key not in by_key:
            marker = MARKERS[len(by_key) % len(MARKERS)] * (1 + len(by_key) // len(MARKERS))
            by_key[key] = Flag(marker, row.settings, differences)
        flag = by_key[key]
        flag.rows.append(row.label)
        if row.settings.basis not in flag.bases:
            flag.bases.append(row.settings.basis)
        flags[row.label] = flag
    return flags


def shared_graders(runs: Sequence[Run]) -> list[str]:
    """The graders every run recorded, in GRADERS order."""
    return [g for g in GRADERS if all(g in run.graders for run in runs)]


def run_names(paths: list[Path]) -> list[str]:
    """Each run's directory name, made unique with its position when two share one."""
    names = [p.resolve().name if p.is_dir() else p.stem for p in paths]
    return [f"{n} ({i + 1})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def paired_differences(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, seeds_a: np.ndarray,
                       seeds_b: np.ndarray) -> np.ndarray:
    """Resampled differences (b - a) of the mean score; ``a``, ``b`` are seeds x problems over the same
    problems, ``seeds_*`` the seed draws (resamples x seeds) shared by every benchmark of the comparison."""
    resamples, problems = seeds_a.shape[0], a.shape[1]
    drawn = rng.integers(0, problems, size=(resamples, problems))
    a_scores = a[seeds_a].mean(axis=1)  # resamples x problems: each problem's mean over the drawn seeds
    b_scores = b[seeds_b].mean(axis=1)
    return np.take_along_axis(b_scores - a_scores, drawn, axis=1).mean(axis=1)


def interval(differences: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def flips(a: np.ndarray, b: np.ndarray, problems: list[str]) -> dict[str, list[str]]:
    solved_a, solved_b = a.mean(axis=0) > 0.5, b.mean(axis=0) > 0.5
    return {"gained": [p for p, x, y in zip(problems, solved_a, solved_b, strict=True) if y and not x],
            "lost": [p for p, x, y in zip(problems, solved_a, solved_b, strict=True) if x and not y]}


def compare_pair(base: Run, other: Run, resamples: int, seed: int,
                 graders: Sequence[str] | None = None) -> dict[str, Any]:
    """``other`` against ``base``: per shared benchmark and grader (default: those both runs recorded), the
    difference, its interval and the flips."""
    graders = list(graders or shared_graders([base, other]))
    if not graders:
        raise HarnessError(f"{other.name} and {base.name} share no grader ({other.name}: "
                           f"{', '.join(other.graders)}; {base.name}: {', '.join(base.graders)})")
    rng = np.random.default_rng(seed)
    shared = [b for b in base.benchmarks() if other.has(b)]
    out: dict[str, Any] = {"benchmarks": {}, "skipped": {}}
    for benchmark in shared:
        if base.datasets.get(benchmark) != other.datasets.get(benchmark):
            mine, theirs = base.datasets.get(benchmark), other.datasets.get(benchmark)
            out["skipped"][benchmark] = (f"another dataset variant ({theirs[0] if theirs else '?'} against "
                                         f"{mine[0] if mine else '?'})")
    compared = [b for b in shared if b not in out["skipped"]]
    for benchmark in other.benchmarks():
        if not base.has(benchmark):
            out["skipped"][benchmark] = "not in the first run"
    if not compared:
        reason = "; ".join(f"{b}: {why}" for b, why in out["skipped"].items()) or "no benchmark in common"
        raise HarnessError(f"{other.name} and {base.name} share no comparable benchmark ({reason})")
    seeds_a = {b: len(base.seeds(b)) for b in compared}
    seeds_b = {b: len(other.seeds(b)) for b in compared}
    if min(seeds_a.values()) == 0 or min(seeds_b.values()) == 0:
        raise HarnessError(f"{other.name} or {base.name} has a benchmark with no seed covering all its problems")
    # One seed draw per resample for the whole run (uniform numbers, scaled per benchmark's seed count).
    uniform_a = rng.random((resamples, max(seeds_a.values())))
    uniform_b = rng.random((resamples, max(seeds_b.values())))
    resampled: dict[str, dict[str, np.ndarray]] = {g: {} for g in graders}
    for benchmark in compared:
        problems = sorted(set(base.problems(benchmark)) & set(other.problems(benchmark)))
        if not problems:
            out["skipped"][benchmark] = "no problem in common"
            continue
        entry: dict[str, Any] = {"problems": len(problems)}
        sa = (uniform_a[:, : seeds_a[benchmark]] * seeds_a[benchmark]).astype(int)
        sb = (uniform_b[:, : seeds_b[benchmark]] * seeds_b[benchmark]).astype(int)
        for grader in graders:
            a, b = base.matrix(benchmark, grader, problems), other.matrix(benchmark, grader, problems)
            differences = paired_differences(a, b, rng, sa, sb)
            resampled[grader][benchmark] = differences
            low, high = interval(differences)
            entry[grader] = {"base": float(a.mean()), "other": float(b.mean()), "difference": float(b.mean() - a.mean()),
                             "low": low, "high": high, "significant": bool(low > 0 or high < 0),
                             "flips": flips(a, b, problems)}
        out["benchmarks"][benchmark] = entry
    if all(b in out["benchmarks"] for b in MATH_BENCHMARKS):
        out["avg"] = {}
        for grader in graders:
            differences = np.mean([resampled[grader][b] for b in MATH_BENCHMARKS], axis=0)
            low, high = interval(differences)
            difference = statistics.fmean(out["benchmarks"][b][grader]["difference"] for b in MATH_BENCHMARKS)
            out["avg"][grader] = {"difference": difference, "low": low, "high": high,
                                  "significant": bool(low > 0 or high < 0)}
    return out


def run_avg(run: Run, grader: str) -> float | None:
    """The six-benchmark Avg. (unweighted mean of avg@k), or None unless the run has all six."""
    if not all(run.has(b) for b in MATH_BENCHMARKS):
        return None
    return statistics.fmean(run.score(b, grader) for b in MATH_BENCHMARKS)


def signed(value: float) -> str:
    return f"{100 * value:+.1f}"


def difference_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    mark = " *" if entry["significant"] else ""
    return f"{signed(entry['difference'])} [{signed(entry['low'])}, {signed(entry['high'])}]{mark}"


def markdown(runs: list[Run], pairs: list[dict[str, Any]], references: list[PublishedRow], resamples: int,
             seed: int, graders: Sequence[str] | None = None) -> str:
    base = runs[0]
    names = base.benchmarks()
    graders = list(graders or shared_graders(runs))
    primary = graders[0]
    lines = ["# Comparison", "", f"Runs: {', '.join(f'`{r.name}` ({r.path})' for r in runs)}. Differences are to "
             f"`{base.name}`, in points, with a paired bootstrap 95% interval over problems and seeds ({resamples} "
             f"resamples, seed {seed}); * marks an interval that excludes 0.", ""]
    unshared = [g for g in GRADERS if g not in graders and any(g in r.graders for r in runs)]
    lines += [f"Graders compared (those every run recorded): {', '.join(graders)}."
              + "".join(f" Not compared: {g} (recorded only by "
                        f"{', '.join(f'`{r.name}`' for r in runs if g in r.graders)})." for g in unshared), ""]
    for grader in graders:
        head = ["Benchmark", "Problems", *(f"{r.name} avg@k" for r in runs), *(f"Δ {r.name}" for r in runs[1:])]
        lines += [f"## Grader: {grader}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for benchmark in names:
            compared = [p["benchmarks"].get(benchmark) for p in pairs]
            problems = next((c["problems"] for c in compared if c), base.problem_count(benchmark))
            scores = [f"{100 * r.score(benchmark, grader):.1f}" if r.has(benchmark) else "–" for r in runs]
            deltas = [difference_cell(c[grader] if c else None) for c in compared]
            lines.append(f"| {title(benchmark)} | {problems} | " + " | ".join(scores + deltas) + " |")
        avgs = [run_avg(r, grader) for r in runs]
        if any(a is not None for a in avgs):
            cells = [f"{100 * a:.1f}" if a is not None else "–" for a in avgs]
            cells += [difference_cell(p.get("avg", {}).get(grader)) for p in pairs]
            lines.append("| Avg. (six math) | | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"## Flipped problems (grader: {primary})", "",
              "| Benchmark | Run | solved only here | solved only in the first run |", "|---|---|---|---|"]
    for run, pair in zip(runs[1:], pairs, strict=True):
        for benchmark, entry in pair["benchmarks"].items():
            flipped = entry[primary]["flips"]
            shown = {k: ", ".join(v[:FLIPS_SHOWN]) + (" …" if len(v) > FLIPS_SHOWN else "") for k, v in flipped.items()}
            lines.append(f"| {title(benchmark)} | {run.name} | {len(flipped['gained'])}: {shown['gained'] or '–'} "
                         f"| {len(flipped['lost'])}: {shown['lost'] or '–'} |")
    skipped = [(run.name, b, why) for run, pair in zip(runs[1:], pairs, strict=True) for b, why in pair["skipped"].items()]
    if skipped:
        lines += ["", "Not compared: " + "; ".join(f"{b} of `{name}` ({why})" for name, b, why in skipped)]
    if references:
        lines += ["", "## Published rows (accuracy %, as printed)", "",
                  "| Row | " + " | ".join(title(b) for b in MATH_BENCHMARKS) + " | Avg. | note |",
                  "|" + "---|" * (len(MATH_BENCHMARKS) + 3)]
        flags = flag_rows(runs, references)
        for row in references:
            avg = f"{row.avg:.1f}" if row.avg is not None else f"({row.mean_of_six():.1f}, mean)"
            marker = f" {flags[row.label].marker}" if row.label in flags else ""
            lines.append(f"| {row.label}{marker} | " + " | ".join(f"{row.values[b]:.1f}" for b in MATH_BENCHMARKS)
                         + f" | {avg} | {row.avg_note() or ''} |")
        for run in runs:
            cells = [f"{100 * run.score(b, primary):.1f}" if run.has(b) else "–" for b in MATH_BENCHMARKS]
            avg = run_avg(run, primary)
            cells.append(f"{100 * avg:.1f}" if avg is not None else "–")
            lines.append(f"| this: {run.name} ({primary} grader) | " + " | ".join(cells) + " |  |")
        lines += [""] + [flag.text() + "\n" for flag in unique_flags(flags)]
        lines += ["Sources: " + "; ".join(sorted({row.source for row in references}))]
    return "\n".join(lines) + "\n"


def unique_flags(flags: dict[str, Flag]) -> list[Flag]:
    return list({flag.marker: flag for flag in flags.values()}.values())


RUN_SHADES = (0.75, 0.5, 0.3, 0.9, 0.6, 0.4)  # of the "Blues" map: the runs' bars
# The published rows' colours (no blue, the runs' colour); past twelve rows they repeat with another shape.
ROW_COLOURS = [*(f"tab:{c}" for c in ("orange", "green", "red", "purple", "brown", "pink", "olive", "cyan")),
               "black", "gold", "lime", "magenta"]
ROW_SHAPES = "oDs^v<>P"


def chart_figure(runs: list[Run], references: list[PublishedRow], grader: str = GRADERS[0]):
    """The comparison chart: each run's avg@k as bars (shades of blue), each published row as points in a colour
    of its own beside them, in the legend; rows measured otherwise than the runs are hollow and marked (†),
    with a footnote under the chart saying what differs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = runs[0].benchmarks()
    flags = flag_rows(runs, references)
    fig_width = max(10.0, 1.3 * len(names) + 6)
    notes = [textwrap.fill(flag.text().replace("`", ""), int(16 * fig_width)) for flag in unique_flags(flags)]
    note_height = 0.12 * sum(note.count("\n") + 1 for note in notes) + (0.1 if notes else 0)  # inches
    fig, ax = plt.subplots(figsize=(fig_width, 4.5 + note_height))
    width = 0.8 / len(runs)
    blues = plt.get_cmap("Blues")
    for i, run in enumerate(runs):
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [100 * run.score(b, grader) if run.has(b) else 0 for b in names], width, label=run.name,
               color=blues(RUN_SHADES[i % len(RUN_SHADES)]), edgecolor="white")
    spread = 0.8 / max(len(references), 1)
    for i, row in enumerate(references):
        colour, shape = ROW_COLOURS[i % len(ROW_COLOURS)], ROW_SHAPES[i % len(ROW_SHAPES)]
        offset = (i - (len(references) - 1) / 2) * spread
        points = [(j + offset, row.values[b]) for j, b in enumerate(names) if b in row.values]
        if not points:
            continue
        flag = flags.get(row.label)
        style = ({"facecolors": "none", "edgecolors": colour, "linewidths": 1.6} if flag
                 else {"color": colour, "edgecolors": "black", "linewidths": 0.5})
        ax.scatter(*zip(*points, strict=True), marker=shape, s=30, zorder=3,
                   label=row.label + (f" {flag.marker}" if flag else ""), **style)
    ax.set_xticks(range(len(names)), [title(n) for n in names], rotation=20)
    ax.set_ylabel(f"avg@k accuracy (%), {grader} grader")
    ax.set_ylim(0, 100)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: labels[k] not in {run.name for run in runs})  # runs first
    ax.legend([handles[k] for k in order], [labels[k] for k in order], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0), title="runs (bars), published (points)", title_fontsize=7)
    what = f"{len(runs)} runs" + (", published rows as points" if references else "")
    if flags:
        what += "; hollow and marked: measured otherwise (footnote)"
    ax.set_title(what, fontsize=9)
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=6.5, va="bottom", ha="left")
    fig.tight_layout(rect=(0, note_height / fig.get_figheight(), 1, 1))
    return fig


def chart(runs: list[Run], references: list[PublishedRow], path: Path, grader: str = GRADERS[0]) -> None:
    import matplotlib.pyplot as plt

    fig = chart_figure(runs, references, grader)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(paths: list[Path], out_dir: Path, references: list[PublishedRow] | None = None,
            resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> str:
    """Write compare.md, compare.json and compare.png in ``out_dir``; return the Markdown."""
    if len(paths) < 2:
        raise HarnessError("compare needs at least two runs")
    references = references or []
    runs = [load_run(path, name) for path, name in zip(paths, run_names(paths), strict=True)]
    graders = shared_graders(runs)
    if not graders:
        raise HarnessError("the runs share no grader: " + "; ".join(f"{r.name}: {', '.join(r.graders)}" for r in runs))
    pairs = [compare_pair(runs[0], other, resamples, seed, graders) for other in runs[1:]]
    text = markdown(runs, pairs, references, resamples, seed, graders)
    result = {
        "graders": graders,
        "runs": [{"name": r.name, "path": str(r.path), "graders": r.graders,
                  "scores": {b: {g: r.score(b, g) for g in graders} for b in r.benchmarks()},
                  "avg": {g: run_avg(r, g) for g in graders}} for r in runs],
        "differences": [{"run": r.name, "against": runs[0].name, **p} for r, p in zip(runs[1:], pairs, strict=True)],
        "references": [{"label": row.label, "source": row.source, "values": row.values, "avg": row.avg,
                        "mean_of_six": row.mean_of_six(), "note": row.avg_note(),
                        "settings": row.settings.describe(),
                        "differs": {r.name: what for r in runs if (what := setting_differences(r, row.settings))}}
                       for row in references],
        "method": {"resamples": resamples, "seed": seed, "interval": "paired bootstrap, 95%"},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    replace_together({
        out_dir / "compare.md": lambda path: path.write_text(text),
        out_dir / "compare.json": lambda path: path.write_text(json.dumps(result, indent=1)),
        out_dir / "compare.png": lambda path: chart(runs, references, path, graders[0]),
    })
    return text
