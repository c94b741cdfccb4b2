"""The workload the engine benchmarks share: LUFFY problems from --data, --n samples each, as the harness
queues them (its per-sample seeds), so every side of every benchmark generates the very same requests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_workload_args(parser: argparse.ArgumentParser, problems: int, template: str) -> None:
    """--model, --data, --benchmark, --problems, --n, --max-tokens, --template."""
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/benchmarks/luffy/valid.all.parquet"))
    parser.add_argument("--benchmark", default="math500")
    parser.add_argument("--problems", type=int, default=problems)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--template", default=template, choices=["own", "qwen", "prime", "none"])


def workload_requests(args: argparse.Namespace) -> list[Any]:
    """The harness's SampleRequests for the first --problems problems of --benchmark, --n each, run seed 0."""
    from benchmarks.runner import sample_seed
    from benchmarks.samplers.base import SampleRequest
    from benchmarks.sources import load_problems

    (problems, _), = load_problems([args.benchmark], [args.data]).values()
    return [SampleRequest((p.benchmark, p.problem_id, i), p.prompt, sample_seed(0, (p.benchmark, p.problem_id, i)))
            for p in problems[: args.problems] for i in range(args.n)]
