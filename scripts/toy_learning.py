"""The toy-task reproduction (docs/luffy_train.md, "Learning on a toy task"): runs and the figure.

    .venv-train/bin/python scripts/toy_learning.py run [--methods luffy grpo luffy-no-shaping sft] [--seeds 1 2 3]
    .venv-train/bin/python scripts/toy_learning.py figure [--out docs/img/toy_learning.png] [--group LABEL=GLOB ...]
    .venv-train/bin/python scripts/toy_learning.py heldout CHECKPOINT [CHECKPOINT ...]

``run`` makes the data and the base checkpoint under ``runs/toy`` when they are missing, then runs each method
and seed one after the other through the documented command (printed before it starts):
``python -m luffy_train --config toy-METHOD --engine local luffy.local.seed=S trainer.default_local_dir=runs/toy/METHOD-sS``.
``figure`` plots the on-policy reward and the demonstrations' log-prob per step, the mean over seeds with the
seeds' range shaded; ``--group LABEL=GLOB`` (run folders under runs/toy) replaces the default groups, one per
method. ``heldout`` grades each checkpoint's greedy answers to the held-out split in-process (transformers'
``generate``, LUFFY's reward), with a 95 % Wilson interval: a quick look, not the harness's evaluation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "runs" / "toy"
METHODS = ("luffy", "grpo", "luffy-no-shaping", "sft")
LABELS = {"luffy": "LUFFY", "grpo": "GRPO (on-policy)", "luffy-no-shaping": "LUFFY, no shaping", "sft": "SFT"}


def command(method: str, seed: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "luffy_train", "--config", f"toy-{method}", "--engine", "local", "--quiet",
            f"luffy.local.seed={seed}", f"trainer.default_local_dir={TOY / f'{method}-s{seed}'}", *extra]


def prepare() -> None:
    if not (TOY / "data" / "train.parquet").exists():
        subprocess.run([sys.executable, "-m", "luffy_train.toy_task", "data", str(TOY / "data")], check=True)
    if not (TOY / "base" / "model.safetensors").exists():
        subprocess.run([sys.executable, "-m", "luffy_train.toy_task", "base", str(TOY / "base")], check=True)


def run(methods: list[str], seeds: list[int], extra: list[str]) -> None:
    prepare()
    for method in methods:
        for seed in seeds:
            cmd = command(method, seed, extra)
            print("$ " + " ".join(c if c != sys.executable else "python" for c in cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=REPO)


def curves(pattern: str) -> list[list[dict]]:
    """The metrics rows of each run folder under runs/toy matching ``pattern``."""
    return [[json.loads(line) for line in path.read_text().splitlines()]
            for path in sorted(TOY.glob(f"{pattern}/metrics.jsonl"))]


def figure(out: Path, groups: dict[str, str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for index, (label, pattern) in enumerate(groups.items()):
        runs = curves(pattern)
        if not runs:
            continue
        for ax, key in zip(axes, ("reward/on_policy", "demo_logp"), strict=True):
            steps = min(len(r) for r in runs)
            values = np.array([[row.get(key) if row.get(key) is not None else np.nan for row in r[:steps]]
                               for r in runs], dtype=float)
            if np.isnan(values).all():
                continue
            x = np.arange(1, steps + 1)
            color = f"C{index}"  # one colour per group in both panels (SFT has no rollouts: no reward line)
            ax.plot(x, np.nanmean(values, 0), color=color, label=f"{label} ({len(runs)} seed{'s' * (len(runs) > 1)})")
            ax.fill_between(x, np.nanmin(values, 0), np.nanmax(values, 0), color=color, alpha=0.2)
    axes[0].set_title("on-policy reward (rollouts right)")
    axes[1].set_title("demonstrations' log-prob / token")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def heldout(checkpoint: Path, max_new_tokens: int = 40) -> tuple[int, int]:
    """(right, total) of the checkpoint's greedy answers on runs/toy/data/heldout.parquet."""
    import torch

    from luffy_train import reward
    from luffy_train.data import read_examples
    from luffy_train.local_engine import load_model, prompt_ids

    model, tokenizer = load_model(str(checkpoint), "cpu")
    examples = read_examples(TOY / "data" / "heldout.parquet")
    prompts = [prompt_ids(tokenizer, example) for example in examples]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
    texts = [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]
    scores = reward.score(texts, [example.gold for example in examples], grader="here")
    return int(sum(scores)), len(scores)


def wilson(right: int, total: int, z: float = 1.96) -> tuple[float, float]:
    centre = (right + z * z / 2) / (total + z * z)
    half = z * (right * (total - right) / total + z * z / 4) ** 0.5 / (total + z * z)
    return centre - half, centre + half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="train each method and seed (documented commands, one after the other)")
    run_p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    run_p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    run_p.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    fig_p = sub.add_parser("figure", help="plot the runs under runs/toy")
    fig_p.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "toy_learning.png")
    fig_p.add_argument("--group", action="append", default=[], help="LABEL=GLOB of run folders under runs/toy")
    held_p = sub.add_parser("heldout", help="greedy held-out accuracy of checkpoints (in-process)")
    held_p.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "heldout":
        for checkpoint in args.checkpoints:
            right, total = heldout(checkpoint)
            low, high = wilson(right, total)
            print(f"{checkpoint}: {right}/{total} = {right / total:.1%} (95% {low:.1%} to {high:.1%})", flush=True)
    elif args.command == "run":
        run(args.methods, args.seeds, args.overrides)
    else:
        groups = dict(g.split("=", 1) for g in args.group) or {LABELS[m]: f"{m}-s*" for m in METHODS}
        print(figure(args.out, groups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
