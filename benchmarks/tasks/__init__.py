"""The benchmark registry, in the paper's column order (six math benchmarks, then the OOD sets)."""

from __future__ import annotations

from collections.abc import Iterable

from benchmarks.problems import Benchmark
from benchmarks.tasks import aime24, aime25, amc, arc_c, gpqa, math500, minerva, mmlu_pro, olympiad

BENCHMARKS: dict[str, Benchmark] = {
    m.BENCHMARK.name: m.BENCHMARK for m in (aime24, aime25, amc, math500, minerva, olympiad, arc_c, gpqa, mmlu_pro)
}
MATH_BENCHMARKS = [name for name, b in BENCHMARKS.items() if b.math]
BY_LUFFY_SOURCE = {b.luffy_source: b for b in BENCHMARKS.values()}


def paper_position(name: str) -> tuple[int, str]:
    """A benchmark's place in every listing the harness prints: the paper's column order (BENCHMARKS), then the
    benchmarks the registry does not know, by name."""
    return (list(BENCHMARKS).index(name) if name in BENCHMARKS else len(BENCHMARKS), name)


def paper_order(names: Iterable[str]) -> list[str]:
    """Benchmark names (each once) in :func:`paper_position` order."""
    return sorted(set(names), key=paper_position)
