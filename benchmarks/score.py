"""`score`: (re)grade stored generations with luffy_math's graders, e.g. after a grader upgrade or for
generations made elsewhere (a JSONL with benchmark, problem, sample, response and gold per line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.grading import collect, submit_all
from benchmarks.store import generation_files, read_jsonl, require_fields, write_jsonl_atomic

REQUIRED = ("benchmark", "problem", "sample", "response", "gold")


def regrade(records: list[dict[str, Any]], workers: int | None, progress: bool) -> None:
    """Replace every record's grades in place (both graders, through the luffy_math pool)."""
    from luffy_math import GradingPool

    with GradingPool(workers=workers) as pool:
        futures = [submit_all(pool, r["response"], r["gold"]) for r in records]
        for record, graded in zip(records, tqdm(futures, desc="grading", unit="sample", disable=not progress),
                                  strict=True):
            record["grades"] = collect(graded)
            record["extracted"] = (record["grades"].get("luffy") or {}).get("extracted")


def score(path: Path, workers: int | None = None, progress: bool = True) -> int:
    """Regrade every generation file under path (atomically rewritten); returns the number of samples.

    Every file is read and checked before any is graded, so a bad file changes nothing."""
    files = {file: read_jsonl(file, repair=True) for file in generation_files(path)}
    for file, records in files.items():
        require_fields(records, REQUIRED, file)
    for file, records in files.items():
        regrade(records, workers, progress)
        write_jsonl_atomic(file, records)
    return sum(len(records) for records in files.values())
