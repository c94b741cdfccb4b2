"""Reading a benchmark from the Hugging Face hub with the `datasets` library."""

from __future__ import annotations

from typing import Any

from benchmarks.problems import HarnessError, Problem
from luffy_util.errors import first_line

MC_LETTERS = "ABCDEFGHIJ"


def load_rows(repo: str, split: str, config: str | None = None) -> list[dict[str, Any]]:
    """All rows of one split; any hub failure becomes a one-line HarnessError that points at --data."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise HarnessError("loading benchmarks from the hub needs the `datasets` package "
                           "(pip install datasets), or pass --data FILE") from e
    try:
        return list(datasets.load_dataset(repo, config, split=split))
    except Exception as e:  # the hub, the network, a gated repo: all end the same way for the user
        raise HarnessError(f"cannot load {repo}{f' ({config})' if config else ''} split {split} from the hub: "
                           f"{first_line(e, 200)}; pass --data FILE (e.g. LUFFY's valid.all.parquet) to run offline"
                           ) from e


def multiple_choice(question: str, options: list[str], labels: str | list[str] = MC_LETTERS) -> str:
    """A question followed by `A) option` lines, the layout of LUFFY's ARC-c and GPQA files."""
    lines = [f"{label}) {option}" for label, option in zip(labels, options, strict=False)]
    return question + "\n\n" + "\n".join(lines) + "\n"


def problem_answer_rows(benchmark: str, rows: list[dict[str, Any]], id_field: str = "id") -> list[Problem]:
    """Rows with `problem` and `answer` columns (the answer kept as ``str()`` gives it: a float64 hub answer
    becomes LUFFY's "142.0"); the id from ``id_field``, else the row's position."""
    return [Problem(benchmark, str(row.get(id_field, i)), row["problem"], str(row["answer"]))
            for i, row in enumerate(rows)]
