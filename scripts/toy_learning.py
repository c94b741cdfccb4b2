"""The toy-task reproduction (docs/luffy_train.md, "Learning on a toy task"): runs and the figure.

    .venv-train/bin/python scripts/toy_learning.py run [--methods luffy grpo luffy-no-shaping sft] [--seeds 1 2 3]
    .venv-train/bin/python scripts/toy_learning.py figure [--out docs/img/toy_learning.png] [--group LABEL=GLOB ...]
    .venv-train/bin/python scripts/toy_learning.py heldout CHECKPOINT [CHECKPOINT ...]
    .venv-train/bin/python scripts/toy_learning.py evaluate [--n 4] [NAME=CHECKPOINT ...]
    .venv-train/bin/python scripts/toy_learning.py table

``run`` makes the data and the base checkpoint under ``runs/toy`` when they are missing, then runs each method
and seed one after the other through the documented command (printed before it starts):
``python -m luffy_train --config toy-METHOD --engine local luffy.local.seed=S trainer.default_local_dir=runs/toy/METHOD-sS``.
``figure`` plots the on-policy reward and the demonstrations' log-prob per step, the mean over seeds with the
seeds' range shaded; ``--group LABEL=GLOB`` (run folders under runs/toy) replaces the default groups, one per
method. ``heldout`` grades each checkpoint's greedy answers to the held-out split in-process (transformers'
``generate``, LUFFY's reward), with a 95 % Wilson interval: a quick look, not the harness's evaluation.
``evaluate`` is the evaluation: each checkpoint (by default the base and every finished run's) served by
luffy-serve (the serving environment, ``.venv``) and the held-out split run through the harness against that
endpoint (``python -m benchmarks run --backend openai``, under runs/toy/eval/NAME), then ``compare`` of every evaluated run
against the base (paired bootstrap intervals; runs/toy/eval/base/compare). ``table`` prints the Markdown
table of docs/luffy_train.md from the runs' metrics and that evaluation.
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
VERL_RUNS = "luffy-verl*"  # toy-luffy-verl's runs: LUFFY on verl, drawn beside the local engine's


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
    for seed in seeds:  # a seed of every method first: stopped early, the runs made still compare
        for method in methods:
            cmd = command(method, seed, extra)
            print("$ " + " ".join(c if c != sys.executable else "python" for c in cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=REPO)


def curves(pattern: str) -> list[list[dict]]:
    """The metrics rows (step, ``reward/on_policy``, ``demo_logp``) of each run folder under runs/toy matching
    ``pattern``, from the local engine's lines as they are and from verl's (``{"step", "data"}``) read into them."""
    runs = []
    for path in sorted(TOY.glob(f"{pattern}/metrics.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if rows and "data" in rows[0]:
            rows = from_verl([row["data"] for row in sorted(rows, key=lambda r: r["step"])])
        runs.append(rows)
    return runs


def from_verl(data: list[dict]) -> list[dict]:
    """verl's step K logs the demonstrations' log-prob under the weights it starts from (the old log-probs), that
    is, after step K-1; the local engine logs it after its step on a fixed probe. Each step gets the next step's
    value (the last step none), so the two curves mean the same thing."""
    return [{"step": k + 1, "reward/on_policy": row.get("luffy/on_policy_score"),
             "demo_logp": data[k + 1].get("luffy/demonstration_logp") if k + 1 < len(data) else None}
            for k, row in enumerate(data)]


def figure(out: Path, groups: dict[str, str]) -> Path:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    warnings.filterwarnings("ignore", "Mean of empty slice|All-NaN slice", RuntimeWarning)  # verl's last step
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
    axes[1].legend(fontsize=8, loc="lower right")
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


SERVE_ENV = REPO / ".venv" / "bin"


def default_checkpoints() -> dict[str, Path]:
    """The base and every finished run's checkpoint under runs/toy: local runs (RUN/checkpoint) and verl runs
    (the newest RUN/global_step_K/actor/huggingface)."""
    found = {"base": TOY / "base"}
    for run_dir in sorted(p for p in TOY.iterdir() if (p / "metrics.jsonl").exists()):
        if (run_dir / "checkpoint" / "model.safetensors").exists():
            found[run_dir.name] = run_dir / "checkpoint"
        verl = sorted(run_dir.glob("global_step_*/actor/huggingface"), key=lambda p: int(p.parts[-3].split("_")[-1]))
        if verl:
            found[run_dir.name] = verl[-1]
    return found


def evaluate(checkpoints: dict[str, Path], n: int, max_tokens: int = 48) -> Path:
    """Serve each checkpoint with luffy-serve, run the held-out split through the harness against it, then
    compare every run with the base. Returns the comparison's folder."""
    sys.path.insert(0, str(REPO))
    from luffy_testing.servers import launch
    from luffy_util.processes import free_port, stop

    out = TOY / "eval"
    out.mkdir(parents=True, exist_ok=True)
    env = {**__import__("os").environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    for name, path in checkpoints.items():
        if (out / name / "report.json").exists():  # a finished harness run (a partial one resumes)
            print(f"{name}: evaluated already ({out / name})", flush=True)
            continue
        port = free_port()
        serve = [str(SERVE_ENV / "luffy-serve"), "--model", str(path), "--served-model-name", "toy",
                 "--port", str(port), "--max-model-len", "256"]
        print("$ " + " ".join(serve), flush=True)
        server = launch(serve, f"http://127.0.0.1:{port}/health", out / f"{name}.serve.log", timeout=900, env=env)
        try:
            harness = [str(SERVE_ENV / "python"), "-m", "benchmarks", "run", "--backend", "openai", "--model", "toy",
                       "--base-url", f"http://127.0.0.1:{port}/v1", "--data", str(TOY / "data" / "heldout.jsonl"),
                       "--benchmarks", "toy-digit-count", "--n", str(n), "--max-tokens", str(max_tokens),
                       "--out", str(out / name), "--no-progress"]
            print("$ " + " ".join(harness), flush=True)
            subprocess.run(harness, check=True, cwd=REPO, env=env)
        finally:
            stop(server)
    # Every evaluated run, this call's and earlier ones', against the base, method by method.
    evaluated = [p for pattern in (*(f"{m}-s*" for m in METHODS), VERL_RUNS) for p in sorted(out.glob(pattern))
                 if (p / "report.json").exists()]
    runs = [out / "base", *evaluated]
    if len(runs) == 1:
        return out / "base"
    subprocess.run([str(SERVE_ENV / "python"), "-m", "benchmarks", "compare", *map(str, runs)], check=True, cwd=REPO)
    return out / "base" / "compare"


def table(graders: tuple[str, ...] = ("luffy", "math_verify")) -> str:
    """One Markdown row per run: its curve in numbers, and its held-out avg@k per grader as the harness scored it,
    with the difference to the base and its paired 95 % interval (from ``evaluate``'s comparison)."""
    compare_json = TOY / "eval" / "base" / "compare" / "compare.json"
    differences = {}
    if compare_json.exists():
        differences = {d["run"]: d["benchmarks"].get("toy-digit-count", {})
                       for d in json.loads(compare_json.read_text())["differences"]}
    head = ["run", "steps", "first right rollout", "on-policy reward, last 5", "demo log-prob, step 1 → last",
            *(f"held-out avg@4, `{g}` (Δ base, 95 %)" for g in graders), "held-out truncated"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = [*(f"{m}-s*" for m in METHODS), VERL_RUNS]
    for path in (p for pattern in groups for p in sorted(TOY.glob(pattern)) if (p / "metrics.jsonl").exists()):
        rows = curves(path.name)[0]
        rewards = [r.get("reward/on_policy") for r in rows]
        logps = [r["demo_logp"] for r in rows if r.get("demo_logp") is not None]
        first = next((r["step"] for r in rows if (r.get("reward/on_policy") or 0) > 0), None)
        cells = [path.name, str(len(rows)),
                 "—" if rewards[0] is None else (str(first) if first else "none"),
                 "—" if rewards[0] is None else f"{sum(rewards[-5:]) / 5:.2f}",
                 f"{logps[0]:.2f} → {logps[-1]:.2f}" if logps else "—"]
        report = TOY / "eval" / path.name / "report.json"
        bench = json.loads(report.read_text())["benchmarks"]["toy-digit-count"] if report.exists() else None
        for grader in graders:
            d = differences.get(path.name, {}).get(grader)
            score = f"{100 * bench[grader]['avg']['mean']:.1f} %" if bench else "not evaluated"
            cells.append(score + (f" ({100 * d['difference']:+.1f}, {100 * d['low']:+.1f} to {100 * d['high']:+.1f})"
                                  if d else ""))
        cells.append(f"{100 * bench['truncation_rate']['mean']:.0f} %" if bench else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    sub.add_parser("table", help="the Markdown table of the runs and their evaluation")
    held_p = sub.add_parser("heldout", help="greedy held-out accuracy of checkpoints (in-process)")
    held_p.add_argument("checkpoints", nargs="+", type=Path)
    eval_p = sub.add_parser("evaluate", help="serve each checkpoint and run the harness on the held-out split")
    eval_p.add_argument("checkpoints", nargs="*", metavar="NAME=CHECKPOINT",
                        help="default: runs/toy/base and every finished run's checkpoint")
    eval_p.add_argument("--n", type=int, default=4, help="samples per problem (temperature 0.6)")
    args = parser.parse_args(argv)
    if args.command == "heldout":
        for checkpoint in args.checkpoints:
            right, total = heldout(checkpoint)
            low, high = wilson(right, total)
            print(f"{checkpoint}: {right}/{total} = {right / total:.1%} (95% {low:.1%} to {high:.1%})", flush=True)
    elif args.command == "evaluate":
        chosen = {k: Path(v) for k, v in (c.split("=", 1) for c in args.checkpoints)} or default_checkpoints()
        if "base" not in chosen:
            chosen = {"base": TOY / "base", **chosen}
        print(evaluate(chosen, args.n))
    elif args.command == "table":
        print(table())
    elif args.command == "run":
        run(args.methods, args.seeds, args.overrides)
    else:
        groups = dict(g.split("=", 1) for g in args.group) or {
            **{LABELS[m]: f"{m}-s*" for m in METHODS}, "LUFFY on verl": VERL_RUNS}
        print(figure(args.out, groups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
