"""Training metrics: one JSON line per step, and a PNG of the reward and loss curves."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

PLOTTED = (("reward/on_policy", "reward (on-policy)"), ("reward/off_policy", "reward (demonstrations)"),
           ("loss", "loss"), ("demo_logp", "demonstration log-prob / token"))


def keep_steps_through(path: Path, step: int) -> int:
    """Cut the JSON-lines file ``path`` (each line with a ``"step"``) in place after its last line of a step
    ``<= step``: what a run resuming after ``step`` keeps. The lines of later steps (logged after the checkpoint
    it resumes from, before the run died) go, and so does a torn last line. Returns the lines kept."""
    path = Path(path)
    if not path.exists():
        return 0
    offset, kept = 0, 0
    with path.open("rb") as f:
        for line in f:
            try:
                row = json.loads(line)
                complete = line.endswith(b"\n") and int(row["step"]) <= step
            except (ValueError, KeyError, TypeError):
                complete = False
            if not complete:
                break
            offset, kept = offset + len(line), kept + 1
    if offset < path.stat().st_size:
        os.truncate(path, offset)  # in place: a writer holding the file open in append mode carries on
    return kept


class MetricsLog:
    """Appends ``{"step": k, ...metrics}`` lines; ``plot`` draws what was written.

    ``resume_after``: the step a resumed run continues after; the lines up to it stay (``keep_steps_through``),
    so the file goes on without a gap or a repeated step. 0 starts the file afresh.
    """

    def __init__(self, path: Path, resume_after: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_after:
            keep_steps_through(self.path, resume_after)
        else:
            self.path.write_text("")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the step's checkpoint is

    def rows(self) -> list[dict[str, float]]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def plot(self, out: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows()
        fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4 * len(PLOTTED), 3.2))
        for ax, (key, title) in zip(axes, PLOTTED, strict=True):
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return Path(out)
