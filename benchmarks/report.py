"""The report: Markdown (the paper's column order), JSON and a PNG chart, with what was measured and how."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from benchmarks import metrics
from benchmarks.grading import GRADER_NOTES, LIBRARIES, grader_versions
from benchmarks.problems import HarnessError
from benchmarks.store import read_records, replace_together, require_fields
from benchmarks.tasks import BENCHMARKS, MATH_BENCHMARKS, paper_position


def pct(value: dict[str, Any] | None) -> str:
    if value is None:
        return "–"
    text = f"{100 * value['mean']:.1f}"
    return text + (f" ± {100 * value['std']:.1f}" if value.get("std") is not None else "")


def title(name: str) -> str:
    return BENCHMARKS[name].title if name in BENCHMARKS else name


def config_order(config: dict[str, Any]) -> tuple[int, str, int, str]:
    """A config's place in a listing: its benchmark in the paper's order, then its seed, then the rest."""
    seed = config.get("seed")
    return (*paper_position(str(config.get("benchmark"))), seed if isinstance(seed, int) else -1,
            json.dumps(config, sort_keys=True, default=str))


def accuracy_table(result: dict[str, Any], columns: list[str], with_avg: bool) -> list[str]:
    benchmarks = result["benchmarks"]
    head = ["Grader", *(title(c) for c in columns)] + (["Avg."] if with_avg else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for grader in result["graders"]:
        cells = [pct(benchmarks[c][grader]["avg"]) if c in benchmarks else "–" for c in columns]
        if with_avg:
            cells.append(pct(result["avg"][grader]) if result["avg"] else "–")
        lines.append(f"| {grader} | " + " | ".join(cells) + " |")
    return lines


def details_table(result: dict[str, Any], grader: str) -> list[str]:
    head = ["Benchmark", "Problems", "k", "avg@k", "pass@k", "maj@k", "maj@k ties", "formatted", "truncated",
            "mean tokens", "grader timeouts"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, b in result["benchmarks"].items():  # the paper's order (metrics.compute)
        g, k = b[grader], b["samples_per_problem"]
        passes = ", ".join(f"@{kk} {pct(v)}" for kk, v in g["pass"].items())
        length = f"{b['length']['mean']:.0f}" if b["length"] else "–"
        ties = g.get("maj_ties", {}).get(str(k), "–")  # problems (summed over seeds) whose vote was a tie
        lines.append(f"| {title(name)} | {b['problems']} | {k} | {pct(g['avg'])} | {passes} | {pct(g['maj'][str(k)])} "
                     f"| {ties} | {pct(g['formatted'])} | {pct(b['truncation_rate'])} | {length} | {g['timed_out']} |")
    return lines


def run_metadata(run_dir: Path) -> dict[str, Any]:
    """The configs the samples were made with, and the invocations (argv, package versions) that made them."""
    meta: dict[str, Any] = {"configs": {}, "runs": []}
    if (run_dir / "configs.json").exists():
        meta["configs"] = json.loads((run_dir / "configs.json").read_text())
    if (run_dir / "runs.jsonl").exists():
        meta["runs"] = [json.loads(line) for line in (run_dir / "runs.jsonl").read_text().splitlines() if line]
    return meta


def libraries_of(versions: dict[str, Any], grader: str) -> dict[str, str] | None:
    """The library versions behind ``grader``'s labels in one invocation's recorded versions, if it has them:
    "luffy_exact" ran on the environment with LUFFY's pins, the others on the harness's own."""
    if grader == "luffy_exact":
        found = versions.get("luffy_exact")
        return found if isinstance(found, dict) else None
    found = {package: versions[package] for package in LIBRARIES if isinstance(versions.get(package), str)}
    return found or None


def recorded_libraries(meta: dict[str, Any], grader: str) -> dict[str, str] | None:
    """``grader``'s library versions as the latest invocation that graded with it recorded them (runs.jsonl:
    `run` and `score` log theirs; one that graded nothing, or not with this grader, is passed over)."""
    for entry in reversed(meta["runs"]):
        if entry.get("generated") == 0 and "scored" not in entry:
            continue
        if "graders" in entry and grader not in entry["graders"]:
            continue
        found = libraries_of(entry.get("versions") or {}, grader)
        if found:
            return found
    return None


def grader_libraries(meta: dict[str, Any], graders: list[str]) -> dict[str, tuple[dict[str, str] | None, bool]]:
    """Per grader: its library versions and whether the run recorded them (else: what is installed here now)."""
    out: dict[str, tuple[dict[str, str] | None, bool]] = {}
    for grader in graders:
        found = recorded_libraries(meta, grader)
        out[grader] = (found, True) if found else (libraries_of(grader_versions(), grader), False)
    return out


def versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{package} {v}" for package, v in versions.items())


def grader_lines(result: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """One line per grader of the tables: what it is and the library versions its labels were made with."""
    lines = []
    for grader, (versions, recorded) in grader_libraries(meta, result["graders"]).items():
        if versions is None:
            here = grader_versions().get(grader)
            where = f"versions not recorded by the run (its environment here: {here if isinstance(here, str) else '?'})"
        else:
            where = versions_text(versions) + ("" if recorded else " (installed now; the run did not record them)")
        ungraded = sum(b[grader]["ungraded"] for b in result["benchmarks"].values())
        missing = (f"; {ungraded} samples lack its label and count as wrong (`python -m benchmarks score` "
                   "grades them)") if ungraded else ""
        lines.append(f"- `{grader}`: {GRADER_NOTES.get(grader, grader)}; {where}{missing}")
    return lines


CONFIG_KEYS = ("benchmark", "variant", "model", "backend", "template", "temperature", "top_p", "max_tokens", "seed")


def described(config: dict[str, Any]) -> dict[str, Any]:
    """A config with "?" for what it does not say (a store written by hand or by an older harness)."""
    return {**dict.fromkeys(CONFIG_KEYS, "?"), **config}


def setup_lines(result: dict[str, Any], meta: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    used = {r["config_hash"] for r in records if "config_hash" in r}
    lines = ["## Setup", ""]
    for config in sorted((meta["configs"][d] for d in used if meta["configs"].get(d)), key=config_order):
        config = described(config)
        sampling = ", ".join(f"{k} {config[k]}" for k in ("template", "temperature", "top_p", "max_tokens", "seed"))
        lines.append(f"- {title(config['benchmark'])}: {config['variant']}; model {config['model']} "
                     f"({config['backend']}); {sampling}")
    served = collections.Counter(r["endpoint"] for r in records if r.get("endpoint"))
    if served:
        backends = {meta["configs"].get(digest, {}).get("backend") for digest in used}
        what = "Replicas" if backends == {"ray"} else "Endpoints"
        lines.append(f"- {what} (samples each answered): " + ", ".join(f"{name} ({n})"
                                                                       for name, n in sorted(served.items())))
    lines.append("- Graders (all from luffy_math; versions under the accuracy table): " + ", ".join(result["graders"]))
    lines.append("- Avg. = unweighted mean of the six math benchmarks' avg@k (only shown when all six exist); "
                 "± = sample std over seeds")
    if meta["runs"]:
        versions = meta["runs"][-1]["versions"]
        lines.append("- Versions (last run): " + ", ".join(f"{k} {v}" for k, v in versions.items()
                                                          if isinstance(v, str)))
    return lines


def chart_caption(meta: dict[str, Any], records: list[dict[str, Any]], graders: list[str] | None = None) -> str:
    """Model, sampling and grader versions in two lines, so a chart shown alone still says what it measured."""
    configs = [described(c) for c in sorted((meta["configs"][h] for h in {r.get("config_hash") for r in records}
                                             if h in meta["configs"]), key=config_order)]
    if configs:
        c = configs[0]
        models = sorted({Path(str(c["model"])).name or str(c["model"]) for c in configs})
        first = (f"{', '.join(models)} ({c['backend']}); template {c['template']}, "
                 f"T {c['temperature']}, top_p {c['top_p']}, max_tokens {c['max_tokens']}")
    else:
        first = "generations scored from a file"
    graders = graders or ["luffy"]
    libraries = grader_libraries(meta, graders)
    by_version: dict[str, list[str]] = {}
    for grader in graders:
        by_version.setdefault((libraries[grader][0] or {}).get("math-verify", "?"), []).append(grader)
    luffy = (libraries.get("luffy", (None,))[0] or {}).get("luffy", "?")
    math_verify = ", ".join(f"{v} ({', '.join(gs)})" if len(by_version) > 1 else v for v, gs in by_version.items())
    return (f"{first}\ngraders from luffy_math {luffy} (math-verify {math_verify}); "
            "bars: avg@k, error bars: std over seeds")


ALL_ZERO_NOTE = "every score is 0"


def chart_figure(result: dict[str, Any], caption: str):
    """The report's bar chart (avg@k per benchmark and grader); a chart whose every bar is 0 says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["benchmarks"])  # the paper's order (metrics.compute)
    labels = [title(n) for n in names] + (["Avg."] if result["avg"] else [])
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(labels) + 3), 4.5))
    graders = result["graders"]
    width = 0.8 / len(graders)
    heights = []
    for i, grader in enumerate(graders):
        values = [result["benchmarks"][n][grader]["avg"] for n in names]
        if result["avg"]:
            values.append(result["avg"][grader])
        xs = [j + (i - (len(graders) - 1) / 2) * width for j in range(len(labels))]
        heights += [100 * v["mean"] for v in values]
        ax.bar(xs, [100 * v["mean"] for v in values], width, label=grader,
               yerr=[100 * (v["std"] or 0) for v in values], capsize=3)
    if not any(heights):  # bars of height 0 draw nothing: say it, so the chart does not look empty
        ax.text(0.5, 0.5, ALL_ZERO_NOTE, transform=ax.transAxes, ha="center", va="center", fontsize=12,
                color="dimgray")
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_ylabel("avg@k accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(title="grader", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(caption, fontsize=8, wrap=True)
    fig.tight_layout()
    return fig


def chart(result: dict[str, Any], path: Path, caption: str) -> None:
    import matplotlib.pyplot as plt

    fig = chart_figure(result, caption)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build(path: Path, out_dir: Path | None = None) -> str:
    """Compute metrics for a run directory (or one JSONL) and write report.md, report.json and report.png."""
    records = read_records(path)
    if not records:
        raise HarnessError(f"{path}: no samples to report")
    require_fields(records, ("benchmark", "problem", "sample", "gold"), path)
    try:
        result = metrics.compute(records)
    except ValueError as e:
        raise HarnessError(f"{path}: {e}") from e
    run_dir = path if path.is_dir() else path.parent
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = run_metadata(run_dir)
    meta["configs"] = dict(sorted(meta["configs"].items(), key=lambda item: config_order(item[1])))
    ood = [n for n in result["benchmarks"] if n not in MATH_BENCHMARKS]
    lines = ["# LUFFY evaluation", "", "Accuracy (avg@k, %), paper column order:", "",
             *accuracy_table(result, MATH_BENCHMARKS, with_avg=True), "", *grader_lines(result, meta), ""]
    if ood:
        lines += ["Out of distribution and other sets:", "", *accuracy_table(result, ood, with_avg=False), ""]
    for grader in result["graders"]:
        lines += [f"## Details (grader: {grader})", "", *details_table(result, grader), ""]
    lines += [*setup_lines(result, meta, records), ""]
    markdown = "\n".join(lines)
    try:
        replace_together({
            out_dir / "report.md": lambda path: path.write_text(markdown),
            out_dir / "report.json": lambda path: path.write_text(json.dumps({**result, "meta": meta}, indent=1)),
            out_dir / "report.png": lambda path: chart(result, path, chart_caption(meta, records, result["graders"])),
        })
    except OSError as e:  # a full disk: the previous report files stay whole, the samples are untouched
        raise HarnessError(f"cannot write the report in {out_dir}: {e.strerror or e}; the samples are stored: "
                           f"`python -m benchmarks report {path}` writes it once there is room") from e
    return markdown
