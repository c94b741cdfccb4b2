"""A harness run as the results viewer reads it: samples grouped by benchmark and problem, and the filters.

Reads the store as written (``benchmarks.store``): a torn last line of a run still writing is skipped, and
:meth:`RunView.reload` picks up what has landed since. Pure Python, no Gradio, so it is tested directly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.grading import GRADERS
from benchmarks.metrics import recorded_graders
from benchmarks.report import in_paper_order
from benchmarks.store import read_records
from luffy_math import split_reasoning

FILTERS = {
    "all samples": lambda s: True,
    "correct (luffy)": lambda s: s.correct("luffy"),
    "wrong (luffy)": lambda s: not s.correct("luffy"),
    "correct (math_verify)": lambda s: s.correct("math_verify"),
    "wrong (math_verify)": lambda s: not s.correct("math_verify"),
    "graders disagree": lambda s: s.correct("luffy") != s.correct("math_verify"),
    # the luffy grader's labels that LUFFY's own library versions give otherwise
    "luffy and luffy_exact disagree": lambda s: s.grade("luffy_exact") is not None
    and s.correct("luffy") != s.correct("luffy_exact"),
    "truncated": lambda s: s.record.get("finish_reason") == "length",
    "grader timeout": lambda s: any((s.grade(g) or {}).get("timed_out") for g in GRADERS),
}


@dataclass
class Sample:
    record: dict[str, Any]

    @property
    def label(self) -> str:
        return f"seed {self.record.get('seed', 0)} · sample {self.record['sample']}"

    def grade(self, grader: str) -> dict[str, Any] | None:
        return (self.record.get("grades") or {}).get(grader)

    def correct(self, grader: str) -> bool:
        return bool((self.grade(grader) or {}).get("correct"))

    def reasoning_and_answer(self) -> tuple[str | None, str]:
        """(the thought, the answer part LUFFY grades): split at the first ``</think>``; no split, no thought."""
        response = self.record.get("response") or ""
        reasoning, answer = split_reasoning(response)
        return (reasoning or None), answer

    def matches(self, text: str) -> bool:
        """Whether ``text`` occurs (case-insensitive) in the extracted answer or the answer part."""
        needle = text.strip().lower()
        if not needle:
            return True
        extracted = " ".join(str((self.grade(g) or {}).get("extracted") or "") for g in GRADERS)
        return needle in extracted.lower() or needle in self.reasoning_and_answer()[1].lower()


@dataclass
class RunView:
    """One run directory: ``problems[benchmark][problem id]`` = its samples, in seed and sample order."""

    path: Path
    problems: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    graders: list[str] = field(default_factory=list)  # those whose labels the run carries, GRADERS order

    @classmethod
    def open(cls, path: Path) -> RunView:
        view = cls(path)
        view.reload()
        return view

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def reload(self) -> None:
        grouped: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
        records = read_records(self.path)
        for record in records:
            grouped[record["benchmark"]][str(record["problem"])].append(Sample(record))
        self.graders = recorded_graders(records)
        for problems in grouped.values():
            for samples in problems.values():
                samples.sort(key=lambda s: (int(s.record.get("seed", 0)), int(s.record["sample"])))
        self.problems = {b: dict(sorted(grouped[b].items(), key=lambda kv: _natural(kv[0])))
                         for b in in_paper_order(grouped)}

    def benchmarks(self) -> list[str]:
        return list(self.problems)

    def samples(self, benchmark: str, problem: str) -> list[Sample]:
        return self.problems.get(benchmark, {}).get(problem, [])

    def matching(self, benchmark: str, verdict: str, text: str = "") -> dict[str, list[Sample]]:
        """The problems of ``benchmark`` with at least one sample passing the filters, with those samples."""
        keep = FILTERS[verdict]
        out = {}
        for problem, samples in self.problems.get(benchmark, {}).items():
            chosen = [s for s in samples if keep(s) and s.matches(text)]
            if chosen:
                out[problem] = chosen
        return out

    def table_headers(self) -> list[str]:
        return ["problem", "gold", "samples shown", *(f"{g} avg@k %" for g in self.graders)]

    def problem_rows(self, benchmark: str, verdict: str, text: str = "") -> list[list[Any]]:
        """One row per matching problem: id, gold, samples shown / all, each grader's avg@k (%)."""
        rows = []
        for problem, chosen in self.matching(benchmark, verdict, text).items():
            every = self.samples(benchmark, problem)
            gold = every[0].record.get("gold")
            rows.append([problem, gold if isinstance(gold, str) else " | ".join(map(str, gold or [])),
                         f"{len(chosen)}/{len(every)}",
                         *(round(100 * sum(s.correct(g) for s in every) / len(every), 1) for g in self.graders)])
        return rows


def _natural(problem_id: str) -> tuple[int, int | str]:
    return (0, int(problem_id)) if problem_id.isdigit() else (1, problem_id)


def sample_markdown(sample: Sample) -> str:
    """The facts of one sample: gold, each grader's extracted answer, verdict and ``decided_by``."""
    record = sample.record
    gold = record.get("gold")
    golds = gold if isinstance(gold, list) else [gold]
    lines = [f"**{sample.label}** · gold: " + ", ".join(f"`{g}`" for g in golds),
             "", "| grader | extracted | verdict | decided by |", "|---|---|---|---|"]
    for grader in (g for g in GRADERS if g in (record.get("grades") or {})):
        grade = sample.grade(grader) or {}
        verdict = "timed out" if grade.get("timed_out") else ("correct" if grade.get("correct") else "wrong")
        extracted = grade.get("extracted")
        lines.append(f"| {grader} | {f'`{extracted}`' if extracted is not None else '—'} | {verdict} "
                     f"| {grade.get('decided_by') or '—'} |")
    finish = record.get("finish_reason")
    tokens = record.get("completion_tokens")
    lines += ["", f"finish: {finish or '—'} · completion tokens: {tokens if tokens is not None else '—'}"]
    return "\n".join(lines)
