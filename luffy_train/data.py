"""Training data: LUFFY's format, checked row by row, from the OpenR1 hub dataset or a local parquet.

A training row has ``prompt`` (chat messages, system + user), ``target`` (one assistant message: the
demonstration trace), ``reward_model.ground_truth`` and ``data_source``. A "flat" parquet with ``problem``,
``answer`` and ``demonstration`` columns is converted to it. Bad rows are reported by index and reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HUB_DATASET = "Elliott/Openr1-Math-46k-8192"


class DataError(ValueError):
    """The data cannot be used for training; the message says which rows and why."""


@dataclass(frozen=True)
class Example:
    """One training prompt with its demonstration (``None`` for validation rows)."""

    messages: list[dict[str, str]]
    demonstration: str | None
    gold: str
    data_source: str = ""


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, np.ndarray):
        return list(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return None


def row_problem(row: Mapping[str, Any], need_target: bool) -> str | None:
    """Why ``row`` is not a usable training row, or None if it is."""
    messages = _as_list(row.get("prompt"))
    if not messages:
        return "prompt is missing or not a list of chat messages"
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) or m.get("role") not in (
                "system", "user", "assistant"):
            return "prompt has a message without a role (system/user/assistant) and string content"
    if messages[-1]["role"] != "user":
        return "the prompt's last message is not from the user"
    reward_model = row.get("reward_model")
    gold = reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None
    if not isinstance(gold, str) or not gold.strip():
        return "reward_model.ground_truth is missing or empty"
    if need_target:
        target = _as_list(row.get("target"))
        if not target or not isinstance(target[0], Mapping) or not isinstance(target[0].get("content"), str):
            return "target is missing (expected [{role: assistant, content: <trace>}])"
        if not target[0]["content"].strip():
            return "target content is empty"
    return None


def flat_to_training(df: pd.DataFrame, system_prompt: str | None) -> pd.DataFrame:
    """Convert ``problem``/``answer``/``demonstration`` columns to LUFFY's row format."""
    rows = []
    for i, r in enumerate(df.to_dict("records")):
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        messages.append({"role": "user", "content": r.get("problem")})
        demo = r.get("demonstration")
        rows.append({
            "data_source": "",
            "prompt": messages,
            "target": [{"role": "assistant", "content": demo}] if demo is not None else [],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": None if r.get("answer") is None else str(r["answer"])},
            "extra_info": {"split": "train", "index": i},
        })
    return pd.DataFrame(rows)


def load_frame(source: str, split: str = "train") -> pd.DataFrame:
    """A parquet path, or a hub dataset name (needs the network and ``datasets``)."""
    path = Path(source)
    if path.suffix == ".parquet" or path.exists():
        if not path.exists():
            raise DataError(f"no such file: {source}")
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for a non-parquet file
            raise DataError(f"cannot read {source} as parquet: {err}") from err
    import datasets

    return datasets.load_dataset(source, split=split).to_pandas()


def validate(df: pd.DataFrame, need_target: bool = True, drop_bad: bool = False) -> pd.DataFrame:
    """Check every row; raise DataError listing bad rows, or drop them when ``drop_bad``."""
    if len(df) == 0:
        raise DataError("the data has no rows")
    if "problem" in df.columns and "prompt" not in df.columns:
        raise DataError("flat data (problem/answer/demonstration) must be converted first: "
                        "python -m luffy_train data SRC OUT")
    bad = [(i, p) for i, row in enumerate(df.to_dict("records")) if (p := row_problem(row, need_target))]
    if bad and not drop_bad:
        shown = "; ".join(f"row {i}: {p}" for i, p in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DataError(f"{len(bad)} of {len(df)} rows are invalid: {shown}{more}")
    if bad:
        df = df.drop(index=df.index[[i for i, _ in bad]]).reset_index(drop=True)
        if len(df) == 0:
            raise DataError("every row is invalid")
    return df


def prepare(source: str, out: str | Path, *, split: str = "train", system_prompt: str | None = None,
            max_rows: int | None = None, drop_bad: bool = False) -> tuple[int, int]:
    """Write ``source`` in training format to ``out`` (atomically); returns (rows kept, rows read)."""
    df = load_frame(source, split)
    read = len(df)
    if "problem" in df.columns and "prompt" not in df.columns:
        df = flat_to_training(df, system_prompt)
    if max_rows is not None:
        df = df.head(max_rows)
    df = validate(df, need_target=True, drop_bad=drop_bad)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        df.to_parquet(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(df), read


def read_examples(path: str | Path, need_target: bool = True, max_rows: int | None = None) -> list[Example]:
    """Load and validate a training-format parquet as Examples (used by the local engine)."""
    df = validate(load_frame(str(path)), need_target=need_target)
    if max_rows is not None:
        df = df.head(max_rows)
    examples = []
    for row in df.to_dict("records"):
        target = _as_list(row.get("target"))
        examples.append(Example(
            messages=[{"role": m["role"], "content": m["content"]} for m in _as_list(row["prompt"])],
            demonstration=target[0]["content"] if target else None,
            gold=row["reward_model"]["ground_truth"],
            data_source=row.get("data_source") or "",
        ))
    return examples
