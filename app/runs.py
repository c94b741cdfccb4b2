"""A harness run as the results viewer reads it: samples grouped by benchmark and problem, and the filters.

Reads the store as written (``benchmarks.store``): a torn last line of a run still writing is skipped, and
:meth:`RunView.reload` picks up what has landed since. The grouping, the order and each sample's verdicts come
from the run's labels table (:mod:`benchmarks.labels`), as in the report. No Gradio, so it is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.grading import GRADERS
from benchmarks.labels import labels_table, per_sample, recorded_graders
from benchmarks.store import read_records
from luffy_math import answer_part
from luffy_math.thinking import THINK_END, split_response

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
    labels: dict[str, bool] = field(default_factory=dict)  # grader -> correct, from the labels table

    @property
    def label(self) -> str:
        return f"seed {self.record.get('seed', 0)} · sample {self.record['sample']}"

    def grade(self, grader: str) -> dict[str, Any] | None:
        return (self.record.get("grades") or {}).get(grader)

    def correct(self, grader: str) -> bool:
        """The grader's verdict; a sample without its label counts as wrong."""
        return self.labels.get(grader, False)

    def reasoning_and_answer(self) -> tuple[str | None, str]:
        """(the thought, the answer part LUFFY grades: :func:`luffy_math.answer_part`). The thought is None when
        it never closed (no ``</think>``): the whole output is then an unfinished thought, all of it graded."""
        response = self.record.get("response") or ""
        reasoning, _ = split_response(response)
        return (reasoning if THINK_END in response else None), answer_part(response)

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
        records = read_records(self.path)
        self.graders = recorded_graders(records)
        table = labels_table(records, GRADERS)  # every grader: a sample without any label still has its rows
        labels: dict[int, dict[str, bool]] = {}
        for index, grader, correct in zip(table["record"], table["grader"], table["correct"], strict=True):
            labels.setdefault(int(index), {})[str(grader)] = bool(correct)
        problems: dict[str, dict[str, list[Sample]]] = {}
        samples = per_sample(table)
        for benchmark, problem, index in zip(samples["benchmark"], samples["problem"], samples["record"], strict=True):
            sample = Sample(records[index], labels[int(index)])
            problems.setdefault(str(benchmark), {}).setdefault(problem, []).append(sample)
        self.problems = problems

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


UNFINISHED = ("*(no thought apart: the output has no </think>, so all of it is an unfinished thought, and LUFFY "
              "grades all of it: the answer part above)*")


def shown_parts(sample: Sample) -> tuple[str, str]:
    """What the viewer shows of a sample's output: (the answer part LUFFY grades, the thought)."""
    reasoning, answer = sample.reasoning_and_answer()
    return answer or "*(empty)*", UNFINISHED if reasoning is None else reasoning or "*(empty thought)*"
