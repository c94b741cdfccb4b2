"""`score`: (re)grade stored generations with luffy_math's graders, e.g. after a grader upgrade or for
generations made elsewhere (a JSONL with benchmark, problem, sample, response and gold per line).

Every sample is graded with the graders this machine has (:func:`benchmarks.grading.graders_here`): an older
run gains "luffy_exact" labels where the environment with LUFFY's pins exists. Labels of a grader that cannot
be graded here are kept as they were. Each invocation is logged in ``runs.jsonl`` beside the files, with the
graders and their library versions, which the report names.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.grading import collect, grader_versions, graders_here, submit_all
from benchmarks.problems import HarnessError
from benchmarks.store import (
    append_line,
    cannot_write,
    generation_files,
    read_jsonl,
    require_fields,
    write_jsonl_atomic,
)

REQUIRED = ("benchmark", "problem", "sample", "response", "gold")


def regrade(records: list[dict[str, Any]], workers: int | None, progress: bool,
            graders: Sequence[str] | None = None) -> None:
    """Replace every record's labels of ``graders`` (default: graders_here()) in place, through the luffy_math
    pool; labels of other graders stay."""
    from luffy_math.workers import GradingPool

    graders = tuple(graders or graders_here())
    with GradingPool(workers=workers) as pool:
        futures = [submit_all(pool, r["response"], r["gold"], graders) for r in records]
        for record, graded in zip(records, tqdm(futures, desc="grading", unit="sample", disable=not progress),
                                  strict=True):
            kept = {g: v for g, v in (record.get("grades") or {}).items() if g not in graders}
            record["grades"] = {**collect(graded), **kept}
            record["extracted"] = (record["grades"].get("luffy") or {}).get("extracted")


def score(path: Path, workers: int | None = None, progress: bool = True) -> int:
    """Regrade every generation file under path (atomically rewritten); returns the number of samples.

    Every file is read and checked before any is graded, so a bad file changes nothing."""
    started = time.time()
    files = {file: read_jsonl(file, repair=True) for file in generation_files(path)}
    for file, records in files.items():
        require_fields(records, REQUIRED, file)
    graders = graders_here()
    kept = sorted({g for records in files.values() for r in records for g in (r.get("grades") or {})} - set(graders))
    if kept:
        print(f"score: {', '.join(kept)} cannot be graded here; the stored labels are kept", file=sys.stderr)
    for file, records in files.items():
        regrade(records, workers, progress, graders)
        write_jsonl_atomic(file, records)
    scored = sum(len(records) for records in files.values())
    run_dir = path if path.is_dir() else path.parent
    runs = run_dir / "runs.jsonl"
    try:
        append_line(runs, json.dumps({"time": started, "argv": sys.argv[1:], "scored": scored, "graders": list(graders),
                                      "seconds": round(time.time() - started, 2), "versions": grader_versions()}))
    except OSError as e:
        raise HarnessError(f"{cannot_write(runs, e)}; the grades are written: only this run's log line is "
                           "missing") from e
    return scored
