"""What resumable checkpoints cost on the local engine: the size of a step's checkpoint (the HF files luffy-serve
loads, and the training state beside them), the time to write it (flushed to disk) and to resume from it,
against the time of a training step on the same model. Steps and saves alternate; medians are reported.

    .venv-train/bin/python perf/checkpoint_bench.py --model .cache/qwen-vocab-model-*-tf5.10.4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from luffy_train import checkpoint
from luffy_train.config import compose
from luffy_train.data import Example
from luffy_train.local_engine import LocalSettings, LocalTrainer

DEMO = "Let me add the numbers carefully.\n</think>\n\nThe answer is $\\boxed{7}$."


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--response-len", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    examples = [Example([{"role": "user", "content": f"What is {a}+{7 - a}?"}], DEMO, "7") for a in range(1, 7)]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        cfg = compose("luffy-tiny-cpu", [f"actor_rollout_ref.model.path={args.model}",
                                         f"data.train_batch_size={args.prompts}",
                                         f"actor_rollout_ref.actor.ppo_mini_batch_size={args.prompts}",
                                         f"actor_rollout_ref.rollout.n={args.n}",
                                         f"data.max_response_length={args.response_len}",
                                         "luffy.local.device=cpu", f"data.train_files={run / 'unused.parquet'}",
                                         f"trainer.default_local_dir={run}"], engine="local")
        trainer = LocalTrainer(LocalSettings.from_config(cfg), examples=examples)
        trainer.step(trainer.next_prompts())  # warm-up; the optimizer's state exists from here
        steps, saves, loads = [], [], []
        for k in range(1, args.repeats + 1):
            t0 = time.perf_counter()
            trainer.step(trainer.next_prompts())
            t1 = time.perf_counter()
            saved = trainer.save(checkpoint.step_dir(run, k), step=k)
            checkpoint.drop_older_states(run, keep=saved)
            t2 = time.perf_counter()
            settings = LocalSettings.from_config(cfg)
            settings.model = str(saved)  # what `train` does on resuming
            LocalTrainer(settings, examples=examples).restore_training_state(checkpoint.load(saved))
            loads.append(time.perf_counter() - t2)
            steps.append(t1 - t0)
            saves.append(t2 - t1)
        hf = folder_mb(saved) - folder_mb(saved / checkpoint.STATE_DIR)
        state = folder_mb(saved / checkpoint.STATE_DIR)
        params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    step, save, load = (statistics.median(x) for x in (steps, saves, loads))
    print(f"model {args.model}: {params:.1f} M parameters (fp32), {args.prompts} prompts x {args.n}, "
          f"{args.response_len} response tokens, {args.repeats} rounds, {args.threads} threads")
    print(f"checkpoint: {hf + state:.1f} MiB = HF files {hf:.1f} MiB + training state {state:.1f} MiB")
    print(f"step {step:.2f} s | save (flushed) {save:.3f} s = {100 * save / step:.0f} % of a step | "
          f"resume (state + model load) {load:.2f} s")


if __name__ == "__main__":
    main()
