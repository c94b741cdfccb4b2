"""Per-step time of LUFFY versus on-policy GRPO on the local engine (same model, same batch).

Both trainers start from the same weights and update on the same tokens: one batch of groups whose first
row is the demonstration and the rest are sampled. LUFFY treats that row as off-policy (shaped loss),
GRPO as one more rollout (clipped ratio). The update (old log-probs, forward, loss, backward, AdamW) is
timed in interleaved repeats; medians are reported. A full step (rollout + update) is timed too, where
LUFFY generates one response fewer per group. Target: LUFFY's update overhead <= 5%.

    .venv-train/bin/python perf/train_step_bench.py --model .cache/tiny-model-*-tf5.10.4
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from luffy_train import core
from luffy_train.config import compose
from luffy_train.data import Example
from luffy_train.local_engine import Batch, LocalSettings, LocalTrainer, sequence_log_probs

DEMO = "Let me add the numbers carefully.\n</think>\n\nThe answer is $\\boxed{7}$."


def make_trainer(config: str, model: str, args: argparse.Namespace, examples: list[Example]) -> LocalTrainer:
    cfg = compose(config, [f"actor_rollout_ref.model.path={model}", f"data.train_batch_size={args.prompts}",
                           f"actor_rollout_ref.actor.ppo_mini_batch_size={args.prompts}",
                           f"actor_rollout_ref.rollout.n={args.n}", f"data.max_response_length={args.response_len}",
                           "luffy.local.device=cpu", "data.train_files=unused.parquet"])
    torch.manual_seed(0)
    return LocalTrainer(LocalSettings.from_config(cfg), examples=examples)


def on_policy_copy(batch: Batch) -> Batch:
    """The same tokens, every row treated as a rollout."""
    return Batch(batch.input_ids, batch.attention_mask, batch.response_mask,
                 torch.zeros_like(batch.is_off_policy), batch.group_ids, batch.rewards, batch.prompt_len)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--response-len", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--full-steps", type=int, default=3, help="interleaved full steps (rollout + update)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    examples = [Example([{"role": "user", "content": f"What is {i}+{7 - i}?"}], DEMO, "7") for i in range(args.prompts)]
    luffy = make_trainer("luffy-qwen-math-7b-zero", args.model, args, examples)
    grpo = make_trainer("grpo-on-policy", args.model, args, examples)
    torch.manual_seed(1)
    batch = luffy.rollout(examples)  # demonstration + (n-1) samples per prompt
    plain = on_policy_copy(batch)
    tokens = int(batch.response_mask.sum())
    luffy.update(batch)  # warm-up
    grpo.update(plain)
    times: dict[str, list[float]] = {"luffy": [], "grpo": []}
    runs = {"luffy": lambda: luffy.update(batch), "grpo": lambda: grpo.update(plain)}
    for i in range(args.repeats):
        for name in (("luffy", "grpo") if i % 2 == 0 else ("grpo", "luffy")):  # alternate who goes first
            times[name].append(timed(runs[name]))
    # The loss alone (forward + backward of core.luffy_loss on the batch's log-probs): the algorithm's cost.
    loss_times: dict[str, list[float]] = {"luffy": [], "grpo": []}
    with torch.no_grad():
        logp, entropy = sequence_log_probs(luffy.model, batch, with_entropy=True)
    adv = luffy.advantages(batch)
    for i in range(args.repeats * 20):
        for name, trainer, b in (("luffy", luffy, batch), ("grpo", grpo, plain))[:: 1 if i % 2 == 0 else -1]:
            leaf = logp.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss, _ = core.luffy_loss(leaf, logp, adv, b.response_mask, b.prefix_mask, trainer.s.loss, entropy=entropy)
            loss.backward()
            loss_times[name].append(time.perf_counter() - t0)
    full: dict[str, list[float]] = {"luffy": [], "grpo": []}
    for _ in range(args.full_steps):
        full["luffy"].append(timed(lambda: luffy.step(examples)))
        full["grpo"].append(timed(lambda: grpo.step(examples)))
    med = {k: statistics.median(v) for k, v in times.items()}
    med_full = {k: statistics.median(v) for k, v in full.items()}
    med_loss = {k: statistics.median(v) for k, v in loss_times.items()}
    print(f"model {Path(args.model).name}, {args.prompts} prompts x n={args.n}, {tokens} response tokens, "
          f"{args.repeats} interleaved repeats, {torch.get_num_threads()} thread(s)")
    print(f"update (same batch): LUFFY {med['luffy'] * 1e3:.1f} ms  GRPO {med['grpo'] * 1e3:.1f} ms  "
          f"overhead {100 * (med['luffy'] / med['grpo'] - 1):+.1f}%")
    print(f"loss alone (forward + backward): LUFFY {med_loss['luffy'] * 1e3:.2f} ms  GRPO {med_loss['grpo'] * 1e3:.2f} ms")
    print(f"full step (rollout + update): LUFFY {med_full['luffy']:.2f} s  GRPO {med_full['grpo']:.2f} s  "
          f"({100 * (med_full['luffy'] / med_full['grpo'] - 1):+.1f}%)")


if __name__ == "__main__":
    main()
