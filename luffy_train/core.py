"""LUFFY's algorithm in plain torch: the per-token off-policy mask, mixed-group advantages and the shaped loss.

No verl import here: the verl worker loss and the local engine both call these functions, so the
algorithm is written (and tested) once. The loss knobs (``LossConfig``) and the choices both engines make
from the config live in ``recipe``. Shapes: ``[batch, response_len]`` for per-token tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from luffy_train.recipe import ADVANTAGES, LossConfig

__all__ = ["LossConfig", "group_advantages", "luffy_loss", "off_policy_weight", "on_policy_ratio",
           "prefix_mask_from_rows", "row_advantages", "token_advantages"]

# ----------------------------------------------------------------------------------------------------------
# Off-policy mixing (which rows are demonstrations: recipe.off_policy_copies)


def prefix_mask_from_rows(is_off_policy: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """The per-token ``prefix_mask``: true on every valid token of a demonstration row."""
    return is_off_policy.to(torch.bool)[:, None] & response_mask.to(torch.bool)


# ----------------------------------------------------------------------------------------------------------
# Advantages


def group_advantages(scores: torch.Tensor, group_ids: Sequence[object], *, is_off_policy: torch.Tensor | None = None,
                     split: bool = False, use_std: bool = False, epsilon: float = 1e-6) -> torch.Tensor:
    """GRPO outcome advantages per row.

    Default (LUFFY): baseline = mean over the whole mixed group, no std division, so A = r - mean(group).
    ``split=True`` (LUFFY's ``grpo_split``): mean/std over the group's on-policy rows only, applied to all
    rows; a group with a single on-policy row gets mean 0 and std 1, and std 0 is replaced by 1.
    """
    scores = scores.detach().to(torch.float32)
    if split and is_off_policy is None:
        raise ValueError("split advantages need is_off_policy")
    members: dict[object, list[int]] = {}
    for i, gid in enumerate(group_ids):
        if split and bool(is_off_policy[i]):
            members.setdefault(gid, [])
            continue
        members.setdefault(gid, []).append(i)
    adv = torch.empty_like(scores)
    for gid, rows in members.items():
        if not rows:
            raise ValueError(f"group {gid!r} has no on-policy sample to form the baseline")
        group = scores[rows]
        if split and len(rows) == 1:
            mean, std = torch.tensor(0.0), torch.tensor(1.0)
        else:
            mean = group.mean()
            std = group.std() if len(rows) > 1 else torch.tensor(1.0)
        if split and std.item() == 0:
            std = torch.tensor(1.0)
        targets = [i for i, g in enumerate(group_ids) if g == gid]
        denom = (std + epsilon) if use_std else 1.0
        adv[targets] = (scores[targets] - mean) / denom
    return adv


def row_advantages(scores: torch.Tensor, group_ids: Sequence[object], is_off_policy: torch.Tensor, *,
                   advantage: str, use_std: bool) -> torch.Tensor:
    """One advantage per row, as ``luffy.advantage`` and ``luffy.use_std`` choose: ``grpo`` takes the baseline
    over the whole mixed group, ``grpo_split`` over its on-policy rows only (:func:`group_advantages`).
    Both engines call this; verl's own estimator output is replaced by it before each actor update."""
    if advantage not in ADVANTAGES:
        raise ValueError(f"luffy.advantage must be grpo or grpo_split, got {advantage!r}")
    return group_advantages(scores, group_ids, is_off_policy=is_off_policy, split=advantage == "grpo_split",
                            use_std=use_std)


def token_advantages(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Broadcast one advantage per row over its valid response tokens."""
    return advantages[:, None] * response_mask.to(advantages.dtype)


# ----------------------------------------------------------------------------------------------------------
# Loss


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the mask; 0 (not NaN) when the mask is empty, as LUFFY logs it."""
    mask = mask.to(values.dtype)
    total = mask.sum()
    if total.item() == 0:
        return values.new_zeros(())
    return (values * mask).sum() / total


def off_policy_weight(log_prob: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """f(p) for demonstration tokens; gradients flow through p."""
    p = torch.exp(log_prob)
    kind = cfg.off_policy_reshape
    if kind == "no_reshape":
        return p
    if kind == "logp":
        return cfg.reshape_weight * log_prob
    if kind == "p_logp":
        return cfg.reshape_weight * log_prob + p
    if kind == "square_root":
        return torch.sqrt(p)
    if kind == "pow":
        return torch.pow(p, cfg.reshape_pow_exp)
    gamma = float(kind.removeprefix("p_div_p_"))
    return p / (p + gamma)


def on_policy_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """The importance ratio for rollout tokens, optionally reshaped."""
    delta = log_prob - old_log_prob
    kind = cfg.on_policy_reshape
    if kind == "no_reshape":
        return torch.exp(delta)
    if kind == "logp":
        return delta
    if kind == "p_logp":
        return torch.exp(delta) + cfg.reshape_weight * delta
    if kind == "square_root":
        return torch.sqrt(torch.exp(delta))
    if kind == "pow":
        return torch.pow(torch.exp(delta), cfg.reshape_pow_exp)
    gamma = float(kind.removeprefix("p_div_p_"))
    p, old_p = torch.exp(log_prob), torch.exp(old_log_prob)
    return (p / (p + gamma)) / (old_p / (old_p + gamma))


def luffy_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
               response_mask: torch.Tensor, prefix_mask: torch.Tensor, cfg: LossConfig,
               entropy: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """LUFFY's policy loss for one micro-batch; returns (loss, metrics).

    On-policy tokens: -A * r (PPO-clipped only when ``cfg.clip_on_policy``); off-policy tokens: -A * f(p),
    with ``old_log_prob`` unused. The token losses are summed over valid tokens and divided by
    ``cfg.loss_normalizer`` (LUFFY: 8192), or token-averaged when it is None. Minus entropy_coeff times the
    token-mean entropy.
    """
    valid = response_mask.to(torch.bool)
    off = prefix_mask.to(torch.bool) & valid
    on = ~prefix_mask.to(torch.bool) & valid
    metrics: dict[str, float] = {}

    ratio = on_policy_ratio(log_prob, old_log_prob, cfg)
    on_losses = -advantages * ratio
    clipfrac = torch.zeros(())
    if cfg.clip_on_policy:
        clipped = -advantages * torch.clamp(ratio, 1.0 - cfg.clip_ratio, 1.0 + cfg.clip_ratio)
        clipfrac = _masked_mean((clipped > on_losses).float(), on)
        on_losses = torch.maximum(on_losses, clipped)

    if cfg.off_policy_loss == "shaped":
        off_ratio = off_policy_weight(log_prob, cfg)
        off_losses = -advantages * off_ratio
        metrics["off_ratio_mean"] = _masked_mean(off_ratio.detach(), off).item()
    else:  # "sft" adds its own term below; "none" drops the demonstration tokens from the policy loss
        off_losses = torch.zeros_like(log_prob)

    token_losses = torch.where(off, off_losses, on_losses)
    if cfg.loss_normalizer is None:
        pg_loss = _masked_mean(token_losses, valid)
    else:
        pg_loss = (token_losses * valid).sum() / cfg.loss_normalizer
    loss = pg_loss

    if cfg.off_policy_loss == "sft":
        # LUFFY's multitask baseline: the token-mean NLL of the demonstration rows, added to the on-policy loss.
        sft_loss = _masked_mean(-log_prob, off)
        loss = loss + cfg.sft_loss_coef * sft_loss
        metrics["sft_loss"] = sft_loss.item()

    if entropy is not None and cfg.entropy_coeff != 0:
        entropy_loss = _masked_mean(entropy, valid)
        loss = loss - cfg.entropy_coeff * entropy_loss
        metrics["entropy"] = entropy_loss.item()

    with torch.no_grad():
        metrics["pg_loss"] = pg_loss.item()
        metrics["on_pg_loss"] = _masked_mean(on_losses, on).item()
        metrics["off_pg_loss"] = _masked_mean(off_losses, off).item()
        metrics["on_policy_prob"] = _masked_mean(torch.exp(old_log_prob), on).item()
        metrics["off_policy_prob"] = _masked_mean(torch.exp(log_prob), off).item()
        metrics["pg_clipfrac"] = clipfrac.item()
        metrics["ppo_kl"] = _masked_mean(old_log_prob - log_prob, on).item()
    return loss, metrics
