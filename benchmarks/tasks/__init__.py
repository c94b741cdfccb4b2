"""The benchmark registry, in the paper's column order (six math benchmarks, then the OOD sets)."""

from __future__ import annotations

from benchmarks.problems import Benchmark
from benchmarks.tasks import aime24, aime25, amc, arc_c, gpqa, math500, minerva, mmlu_pro, olympiad

BENCHMARKS: dict[str, Benchmark] = {
    m.BENCHMARK.name: m.BENCHMARK for m in (aime24, aime25, amc, math500, minerva, olympiad, arc_c, gpqa, mmlu_pro)
}
MATH_BENCHMARKS = [name for name, b in BENCHMARKS.items() if b.math]
BY_LUFFY_SOURCE = {b.luffy_source: b for b in BENCHMARKS.values()}
