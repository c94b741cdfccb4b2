"""The local engine's resumable checkpoints: a plain HF checkpoint with the training state beside it.

``RUN/step-K/`` is what luffy-serve, vLLM and transformers load (config, safetensors, tokenizer);
``RUN/step-K/training_state/`` holds what resuming needs and HF loaders never read: the step, the data
position, the optimizer's state and the RNG states of python, numpy and torch. Each checkpoint is written in a
hidden folder, flushed to disk and then renamed into place, so a folder named ``step-K`` (or ``checkpoint``,
the run's last) is always whole; a run killed while writing leaves only the hidden folder, which the next run
removes (``remove_partial``). ``latest`` finds the newest one to resume from.

torch is imported where it is used: the CLI checks ``trainer.resume_from_path`` with ``saved_step`` before
anything heavy loads.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

STATE_DIR = "training_state"
STATE_JSON = "trainer_state.json"  # {"step": K}: read to pick the latest without loading tensors
STATE_PT = "state.pt"  # optimizer, scheduler, data position, RNG states
FINAL = "checkpoint"
_STEP_DIR = re.compile(r"step-(\d+)")


def rng_states() -> dict[str, Any]:
    """The RNG states a step draws from: python's (data order), numpy's, torch's CPU and CUDA ones (sampling)."""
    import torch

    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"step-{step}"


def write(out_dir: Path, write_model: Callable[[Path], None], step: int, state: dict[str, Any]) -> Path:
    """Write ``out_dir`` whole or not at all: ``write_model(folder)`` puts the HF files in a hidden folder, the
    training state goes beside them, everything is flushed, and the folder is renamed to ``out_dir``."""
    import torch

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_model(tmp)
    (tmp / STATE_DIR).mkdir()
    torch.save(state, tmp / STATE_DIR / STATE_PT)
    (tmp / STATE_DIR / STATE_JSON).write_text(json.dumps({"step": step}))
    _fsync_tree(tmp)
    old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
    if out_dir.exists():  # saving over a folder (a finished run extended): the old one goes only after
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
    tmp.rename(out_dir)
    _fsync(out_dir.parent)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def saved_step(ckpt: Path) -> int | None:
    """The step a complete checkpoint folder was saved after, or None for a folder without training state."""
    try:
        return int(json.loads((Path(ckpt) / STATE_DIR / STATE_JSON).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint in ``run_dir`` with training state (``step-K`` folders and the final one)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = [(step, p) for p in run_dir.iterdir()
             if p.is_dir() and (_STEP_DIR.fullmatch(p.name) or p.name == FINAL)
             and (step := saved_step(p)) is not None]
    return max(found, key=lambda sp: (sp[0], sp[1].name == FINAL))[1] if found else None


def load(ckpt: Path) -> dict[str, Any]:
    """The training state saved in checkpoint folder ``ckpt`` (its step under ``"step"``)."""
    import torch

    state = torch.load(Path(ckpt) / STATE_DIR / STATE_PT, weights_only=False)
    state["step"] = saved_step(ckpt)
    return state


def drop_older_states(run_dir: Path, keep: Path) -> None:
    """Remove the training state (optimizer and all: twice the model's size) of every checkpoint but ``keep``;
    their HF files stay. Called once ``keep`` is on disk, so a resumable checkpoint always exists."""
    for p in Path(run_dir).iterdir():
        if p != keep and p.is_dir() and (_STEP_DIR.fullmatch(p.name) or p.name == FINAL):
            shutil.rmtree(p / STATE_DIR, ignore_errors=True)


def remove_partial(run_dir: Path) -> None:
    """Remove the hidden folders of saves a killed run left half-written (never taken for checkpoints)."""
    if Path(run_dir).is_dir():
        for p in Path(run_dir).iterdir():
            if p.is_dir() and re.fullmatch(r"\.(step-\d+|checkpoint)\.(tmp|old)\d+", p.name):
                shutil.rmtree(p, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))
