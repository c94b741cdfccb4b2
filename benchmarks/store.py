"""The resumable sample store: one JSONL per seed, one line per finished sample, flushed as it lands.

A line is written whole with a single write and flushed, so `kill -9` can at worst leave one torn last
line, which the next open cuts off. A write that fails (a full disk) is cut back off at once, so the file
stays whole records, and the store takes nothing more: the run ends with one error line and resumes from
what is stored. Each line carries the hash of its benchmark's config; the configs themselves live in
configs.json so a refusal can say what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.problems import HarnessError

Key = tuple[str, str, int]


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def record_key(record: dict[str, Any]) -> Key:
    return (str(record["benchmark"]), str(record["problem"]), int(record["sample"]))


def read_jsonl(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Records of one file; a torn last line (a killed writer) is skipped, or cut off when repair is set."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    try:
        text = complete.decode()
    except UnicodeDecodeError as e:
        raise HarnessError(f"{path}: not a UTF-8 JSONL file ({e.reason} at byte {e.start})") from e
    if repair and len(complete) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    return parse_jsonl(text, str(path))


def parse_jsonl(text: str, where: str) -> list[dict[str, Any]]:
    """The JSON records of a JSONL text; a bad line is a one-line error naming ``where:line``."""
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise HarnessError(f"{where}:{lineno}: not a JSON record ({e.msg})") from e
            if not isinstance(record, dict):
                raise HarnessError(f"{where}:{lineno}: not a JSON object")
            records.append(record)
    return records


def require_fields(records: list[dict[str, Any]], fields: tuple[str, ...], where: Path) -> None:
    """A one-line HarnessError naming the first record that lacks one of ``fields``."""
    for lineno, record in enumerate(records, 1):
        missing = [k for k in fields if k not in record]
        if missing:
            raise HarnessError(f"{where}: record {lineno} lacks {', '.join(missing)}")


def generation_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HarnessError(f"{path}: no such file or directory")
    files = sorted(path.glob("generations.seed*.jsonl"))
    if not files:
        raise HarnessError(f"{path}: no generations.seed*.jsonl files (run `python -m benchmarks run` first)")
    return files


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record under a run directory (all seeds), or of one JSONL file."""
    return [r for f in generation_files(path) for r in read_jsonl(f)]


def cannot_write(path: Path, exc: OSError) -> str:
    """``cannot write PATH: No space left on device``: the one line an OS error on a write becomes."""
    return f"cannot write {path}: {exc.strerror or exc}"


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` to the file open (O_APPEND) as ``fd``, whole or not at all: what a failing write (a full
    disk) left of it is cut off again before the error is raised."""
    end = os.lseek(fd, 0, os.SEEK_END)
    try:
        written = 0
        while written < len(data):  # straight to the OS: nothing waits in a Python buffer
            written += os.write(fd, data[written:])
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise


def append_line(path: Path, line: str) -> None:
    """One line appended whole (or an OSError, with the file as it was)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        append_whole(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def write_jsonl_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_together(writers: dict[Path, Callable[[Path], object]]) -> None:
    """Make each file with its writer under a temporary name (same suffix, for writers that read it), then
    move them all in place: a failure leaves the previous set of files whole."""
    made = {final: final.with_name(f".{final.stem}.tmp{final.suffix}") for final in writers}
    try:
        for final, write in writers.items():
            write(made[final])
        for final, tmp in made.items():
            os.replace(tmp, final)
    finally:
        for tmp in made.values():
            tmp.unlink(missing_ok=True)


class SampleStore:
    """Append-only store for one seed of one run directory."""

    def __init__(self, out_dir: Path, seed: int):
        self.out_dir = out_dir
        self.path = out_dir / f"generations.seed{seed}.jsonl"
        self.configs_path = out_dir / "configs.json"
        self.records: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._failed: HarnessError | None = None  # the first failed append: the store takes nothing after it
        try:  # opening the file for appending is the check that the directory can be written, before any engine
            out_dir.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                for record in read_jsonl(self.path, repair=True):
                    self.records.setdefault(record_key(record), record)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise HarnessError(cannot_write(Path(e.filename or self.path), e)) from e

    def configs(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.configs_path.read_text()) if self.configs_path.exists() else {}

    def claim_config(self, benchmark: str, config: dict[str, Any]) -> str:
        """The config's hash; refuses (HarnessError) when this benchmark already has samples of another config."""
        digest = config_hash(config)
        known = self.configs()
        for record in self.records.values():
            if record["benchmark"] == benchmark and record["config_hash"] != digest:
                before = known.get(record["config_hash"], {})
                changed = sorted(k for k in set(before) | set(config) if before.get(k) != config.get(k))
                detail = ", ".join(f"{k}: {before.get(k)!r} -> {config.get(k)!r}" for k in changed) or "unknown"
                raise HarnessError(f"{self.path} already holds {benchmark} samples made with another config "
                                   f"({detail}); use another --out directory")
        if digest not in known:
            known[digest] = config
            tmp = self.configs_path.with_name("configs.json.tmp")
            try:
                tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
                os.replace(tmp, self.configs_path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise HarnessError(cannot_write(self.configs_path, e)) from e
        return digest

    def append(self, record: dict[str, Any]) -> None:
        """Store one record, whole; after a failed write a HarnessError, this one and every later one."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            if self._failed is not None:
                raise self._failed
            try:
                append_whole(self._fd, line)
            except OSError as e:
                self._failed = HarnessError(
                    f"{cannot_write(self.path, e)}; the {len(self.records)} samples stored there are whole: make "
                    "room and rerun the same command to resume")
                raise self._failed from e
            self.records[record_key(record)] = record

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            fd, self._fd = self._fd, -1
            try:
                os.fsync(fd)
            except OSError as e:
                if self._failed is None:  # a failure already reported says the same
                    raise HarnessError(cannot_write(self.path, e)) from e
            finally:
                os.close(fd)
