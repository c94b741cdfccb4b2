"""Which part of LUFFY's loss moves the demonstrations' log-likelihood, and which way (docs/luffy_train.md, "Why
the documented example made the model worse").

    .venv-train/bin/python scripts/luffy_gradient_parts.py MODEL DATA [BATCHES]

On the old usage example's settings (``luffy-qwen-math-7b-zero``, 2 prompts x 4, 64 response tokens) it draws
BATCHES rollout batches and splits each batch's loss into its on-policy, off-policy (shaped) and entropy parts.
For each part it prints the first-order change of ``demo_logp`` (the demonstrations' mean token log-prob, as
``metrics.jsonl`` logs it) along minus its gradient, and along minus the gradient's sign (a first AdamW step).
"""

from __future__ import annotations

import sys

import torch

from luffy_train import core
from luffy_train.config import compose
from luffy_train.local_engine import (
    LocalSettings,
    LocalTrainer,
    Row,
    collate,
    demonstration_ids,
    prompt_ids,
    sequence_log_probs,
)


def main(model: str, data: str, batches: int = 3) -> None:
    cfg = compose("luffy-qwen-math-7b-zero", [
        f"actor_rollout_ref.model.path={model}", f"data.train_files={data}", "trainer.default_local_dir=/tmp/parts",
        "data.train_batch_size=2", "actor_rollout_ref.rollout.n=4", "data.max_response_length=64",
        "actor_rollout_ref.actor.optim.lr=1e-4", "luffy.local.device=cpu", "luffy.reward_grader=here"], engine="local")
    s = LocalSettings.from_config(cfg)
    trainer = LocalTrainer(s)
    params = list(trainer.model.parameters())

    def flat_grad(loss: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                          for g, p in zip(grads, params, strict=True)])

    rows = []
    for group, example in enumerate(trainer.examples[:4]):
        p = prompt_ids(trainer.tokenizer, example)
        rows.append(Row(group, p, demonstration_ids(trainer.tokenizer, example, trainer.tokenizer.decode(p), 64), True))
    probe = collate(rows, trainer.tokenizer.pad_token_id)
    log_probs, _ = sequence_log_probs(trainer.model, probe, False)
    mask = probe.response_mask.float()
    demo_grad = flat_grad((log_probs * mask).sum() / mask.sum())
    for index in range(batches):
        batch = trainer.rollout(trainer.next_prompts())
        advantages = trainer.advantages(batch)
        logp, entropy = sequence_log_probs(trainer.model, batch, True)
        old = logp.detach()
        valid, prefix = batch.response_mask.bool(), batch.prefix_mask
        norm = s.loss.loss_normalizer
        parts = {"on-policy": (-advantages * torch.exp(logp - old) * (valid & ~prefix)).sum() / norm,
                 "off-policy": (-advantages * core.off_policy_weight(logp, s.loss) * prefix).sum() / norm,
                 "entropy": -s.loss.entropy_coeff * (entropy * valid).sum() / valid.sum()}
        whole, _ = core.luffy_loss(logp, old, advantages, batch.response_mask, prefix, s.loss, entropy=entropy)
        parts["whole loss"] = sum(parts.values())
        assert torch.allclose(whole, parts["whole loss"], atol=1e-6)  # the parts are the engine's loss
        print(f"batch {index}: rewards {batch.rewards.tolist()} advantages {advantages[:, 0].tolist()}")
        for name, part in parts.items():
            g = flat_grad(part)
            print(f"  {name:10s} d(demo_logp) along -gradient {float(-(g @ demo_grad)):+.4g}, "
                  f"along -sign(gradient) {float(-(torch.sign(g) @ demo_grad)):+.4g}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
