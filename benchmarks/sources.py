"""Where problems come from: the hub (each benchmark's own loader), LUFFY's parquet files, or local files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.problems import HarnessError, Problem
from benchmarks.store import parse_jsonl
from benchmarks.tasks import BENCHMARKS, BY_LUFFY_SOURCE
from luffy_util import arg_types
from luffy_util.errors import first_line

DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def data_file(text: str) -> Path:
    """argparse type of --data: a readable .parquet (its footer checked) or .jsonl file, before any engine loads."""
    path = arg_types.existing_file(text)
    if path.suffix not in DATA_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: expected a .parquet or .jsonl file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pq.ParquetFile(path).close()  # reads the footer: a file that is not parquet fails here
        except Exception as e:  # pyarrow raises ArrowInvalid, OSError and others
            raise argparse.ArgumentTypeError(f"{text}: not a parquet file ({first_line(e)})") from None
    return path


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a .parquet or .jsonl file; a file that cannot be read is a HarnessError naming it."""
    if not path.exists():
        raise HarnessError(f"--data {path}: no such file")
    if path.suffix not in DATA_SUFFIXES:
        raise HarnessError(f"--data {path}: expected a .parquet or .jsonl file")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        return parse_jsonl(path.read_text(encoding="utf-8"), f"--data {path}")
    except HarnessError:
        raise
    except Exception as e:  # a torn parquet, bytes that are not UTF-8, an unreadable file
        raise HarnessError(f"--data {path}: cannot read it ({first_line(e)})") from e


def luffy_rows_to_problems(rows: list[dict[str, Any]], path: Path) -> dict[str, list[Problem]]:
    """LUFFY's format: the system message is dropped, and contiguous repeats of a row become n samples."""
    problems: dict[str, list[Problem]] = {}
    previous: tuple[str, str, str] | None = None
    for lineno, row in enumerate(rows):
        source = row.get("data_source")
        if source not in BY_LUFFY_SOURCE:
            raise HarnessError(f"--data {path}: row {lineno} has unknown data_source {source!r}")
        name = BY_LUFFY_SOURCE[source].name
        try:
            users = [m["content"] for m in row["prompt"] if m["role"] == "user"]
            gold = row["reward_model"]["ground_truth"]
            gold = gold if isinstance(gold, str) else [str(g) for g in gold]
            index = str((row.get("extra_info") or {}).get("index", lineno))
            key = (name, index, users[-1])
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise HarnessError(f"--data {path}: row {lineno} is not a LUFFY row (prompt with a user message, "
                               f"reward_model.ground_truth): {type(e).__name__} {e}") from e
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
        if not isinstance(row["problem"], str) or not row["problem"].strip():
            raise HarnessError(f"--data {path}: row {lineno} has no problem text")
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
