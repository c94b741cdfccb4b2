"""Where problems come from: the hub (each benchmark's own loader), LUFFY's parquet files, or local files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.problems import HarnessError, Problem
from benchmarks.store import parse_jsonl
from benchmarks.tasks import BENCHMARKS, BY_LUFFY_SOURCE


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a .parquet or .jsonl file."""
    if not path.exists():
        raise HarnessError(f"--data {path}: no such file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix in (".jsonl", ".json"):
        return parse_jsonl(path.read_text(), f"--data {path}")
    raise HarnessError(f"--data {path}: expected a .parquet or .jsonl file")


def luffy_rows_to_problems(rows: list[dict[str, Any]], path: Path) -> dict[str, list[Problem]]:
    """LUFFY's format: the system message is dropped, and contiguous repeats of a row become n samples."""
    problems: dict[str, list[Problem]] = {}
    previous: tuple[str, str, str] | None = None
    for lineno, row in enumerate(rows):
        source = row["data_source"]
        if source not in BY_LUFFY_SOURCE:
            raise HarnessError(f"--data {path}: row {lineno} has unknown data_source {source!r}")
        name = BY_LUFFY_SOURCE[source].name
        users = [m["content"] for m in row["prompt"] if m["role"] == "user"]
        gold = row["reward_model"]["ground_truth"]
        gold = gold if isinstance(gold, str) else [str(g) for g in gold]
        index = str(row.get("extra_info", {}).get("index", lineno))
        key = (name, index, users[-1])
        if key == previous:
            last = problems[name][-1]
            problems[name][-1] = Problem(name, last.problem_id, last.prompt, last.gold, (last.n or 1) + 1)
        else:
            problems.setdefault(name, []).append(Problem(name, index, users[-1], gold, 1))
        previous = key
    return problems


def plain_rows_to_problems(rows: list[dict[str, Any]], path: Path) -> dict[str, list[Problem]]:
    """A local file with `problem` and `answer` columns; `benchmark` (else the file's stem) and `id` optional."""
    problems: dict[str, list[Problem]] = {}
    for lineno, row in enumerate(rows):
        missing = {"problem", "answer"} - row.keys()
        if missing:
            raise HarnessError(f"--data {path}: row {lineno} lacks {', '.join(sorted(missing))}")
        name = str(row.get("benchmark") or path.stem)
        answer = row["answer"]
        gold = [str(a) for a in answer] if isinstance(answer, list) else str(answer)
        problems.setdefault(name, []).append(Problem(name, str(row.get("id", lineno)), row["problem"], gold))
    return problems


def load_files(paths: list[Path]) -> dict[str, list[Problem]]:
    """Problems per benchmark from every --data file (LUFFY parquet or plain problem/answer tables)."""
    merged: dict[str, list[Problem]] = {}
    for path in paths:
        rows = read_table(path)
        is_luffy = bool(rows) and {"data_source", "prompt", "reward_model"} <= rows[0].keys()
        found = luffy_rows_to_problems(rows, path) if is_luffy else plain_rows_to_problems(rows, path)
        for name, problems in found.items():
            if name in merged:
                raise HarnessError(f"--data: benchmark {name} appears in more than one file")
            merged[name] = problems
    return merged


def load_problems(names: list[str], data: list[Path]) -> dict[str, tuple[list[Problem], str]]:
    """(problems, variant) per requested benchmark, from --data files if given, else from the hub."""
    if data:
        available = load_files(data)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise HarnessError(f"--data has no {', '.join(unknown)} (it has {', '.join(available) or 'nothing'})")
        files = ", ".join(p.name for p in data)
        loaded = {n: (available[n], f"{files} [{n}]") for n in names}
    else:
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            raise HarnessError(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)} "
                               "(or pass --data FILE)")
        loaded = {n: (BENCHMARKS[n].load_hub(), BENCHMARKS[n].variant) for n in names}
    for name, (problems, _) in loaded.items():
        if not problems:
            raise HarnessError(f"benchmark {name} has no problems")
    return loaded
