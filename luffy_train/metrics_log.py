"""Training metrics: one JSON line per step, and a PNG of the reward and loss curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

PLOTTED = (("reward/on_policy", "reward (on-policy)"), ("reward/off_policy", "reward (demonstrations)"),
           ("loss", "loss"), ("demo_logp", "demonstration log-prob / token"))


class MetricsLog:
    """Appends ``{"step": k, ...metrics}`` lines; ``plot`` draws what was written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")

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
