"""LUFFY's loss and advantages (luffy_train.core) on hand-computed cases, one per option."""

from __future__ import annotations

import math

import pytest
import torch

from luffy_train import core, recipe

# Two rows, three tokens. Row 0 is a demonstration (two valid tokens), row 1 an on-policy rollout.
RESPONSE_MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])
PREFIX_MASK = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
P = torch.tensor([[0.5, 0.9, 0.3], [0.2, 0.4, 0.8]])
OLD_P = torch.tensor([[0.1, 0.1, 0.1], [0.4, 0.4, 0.5]])
ADV = torch.tensor([[0.75] * 3, [-0.25] * 3])


def loss_of(cfg: core.LossConfig, entropy: torch.Tensor | None = None, p: torch.Tensor = P):
    return core.luffy_loss(torch.log(p), torch.log(OLD_P), ADV, RESPONSE_MASK, PREFIX_MASK, cfg, entropy=entropy)


def test_luffy_default_loss_matches_hand_computation():
    # off: -0.75 * p/(p+0.1) for p = 0.5, 0.9 -> -0.625, -0.675
    # on (no clip): -(-0.25) * ratio, ratio = 0.5, 1.0, 1.6 -> 0.125, 0.25, 0.4
    loss, m = loss_of(core.LossConfig(loss_normalizer=4, entropy_coeff=0.0))
    assert loss.item() == pytest.approx((-0.625 - 0.675 + 0.125 + 0.25 + 0.4) / 4)
    assert m["off_pg_loss"] == pytest.approx(-0.65)
    assert m["on_pg_loss"] == pytest.approx(0.775 / 3)
    assert m["off_ratio_mean"] == pytest.approx((0.5 / 0.6 + 0.9) / 2)
    assert m["off_policy_prob"] == pytest.approx(0.7)
    assert m["on_policy_prob"] == pytest.approx((0.4 + 0.4 + 0.5) / 3)
    assert m["pg_clipfrac"] == 0.0


def test_token_mean_normalisation():
    loss, _ = loss_of(core.LossConfig(loss_normalizer=None, entropy_coeff=0.0))
    assert loss.item() == pytest.approx(-0.525 / 5)


def test_on_policy_clip_for_grpo_baseline():
    # ratio 0.5 with A < 0: clipped to 0.8 -> loss 0.2 instead of 0.125; 1.6 stays (max keeps 0.4).
    loss, m = loss_of(core.LossConfig(loss_normalizer=4, entropy_coeff=0.0, clip_on_policy=True))
    assert loss.item() == pytest.approx((-1.3 + 0.2 + 0.25 + 0.4) / 4)
    assert m["pg_clipfrac"] == pytest.approx(1 / 3)


def test_entropy_bonus_is_subtracted():
    base, _ = loss_of(core.LossConfig(loss_normalizer=4, entropy_coeff=0.0))
    with_entropy, m = loss_of(core.LossConfig(loss_normalizer=4, entropy_coeff=0.001), entropy=torch.full((2, 3), 2.0))
    assert with_entropy.item() == pytest.approx(base.item() - 0.002)
    assert m["entropy"] == pytest.approx(2.0)


@pytest.mark.parametrize(("reshape", "expected"), [
    ("no_reshape", lambda p: p),
    ("logp", lambda p: math.log(p)),
    ("p_logp", lambda p: p + math.log(p)),
    ("square_root", lambda p: math.sqrt(p)),
    ("pow", lambda p: p ** 0.5),
    ("p_div_p_0.1", lambda p: p / (p + 0.1)),
    ("p_div_p_0.3", lambda p: p / (p + 0.3)),
    ("p_div_p_0.5", lambda p: p / (p + 0.5)),
])
def test_off_policy_reshapes(reshape, expected):
    loss, m = loss_of(core.LossConfig(off_policy_reshape=reshape, loss_normalizer=4, entropy_coeff=0.0))
    off = -0.75 * (expected(0.5) + expected(0.9))
    assert loss.item() == pytest.approx((off + 0.775) / 4, rel=1e-5)
    assert m["off_ratio_mean"] == pytest.approx((expected(0.5) + expected(0.9)) / 2, rel=1e-5)


@pytest.mark.parametrize(("reshape", "ratio"), [
    ("logp", lambda p, q: math.log(p / q)),
    ("p_logp", lambda p, q: p / q + math.log(p / q)),
    ("square_root", lambda p, q: math.sqrt(p / q)),
    ("pow", lambda p, q: (p / q) ** 0.5),
    ("p_div_p_0.1", lambda p, q: (p / (p + 0.1)) / (q / (q + 0.1))),
    ("p_div_p_0.5", lambda p, q: (p / (p + 0.5)) / (q / (q + 0.5))),
])
def test_on_policy_reshapes(reshape, ratio):
    loss, _ = loss_of(core.LossConfig(on_policy_reshape=reshape, loss_normalizer=4, entropy_coeff=0.0))
    on = 0.25 * (ratio(0.2, 0.4) + ratio(0.4, 0.4) + ratio(0.8, 0.5))
    assert loss.item() == pytest.approx((-1.3 + on) / 4, rel=1e-5)


def test_sft_variant_adds_nll_of_demonstrations():
    loss, m = loss_of(core.LossConfig(off_policy_loss="sft", loss_normalizer=4, entropy_coeff=0.0))
    nll = -(math.log(0.5) + math.log(0.9)) / 2
    assert loss.item() == pytest.approx(0.775 / 4 + nll)
    assert m["sft_loss"] == pytest.approx(nll)


def test_none_variant_ignores_demonstration_tokens():
    loss, _ = loss_of(core.LossConfig(off_policy_loss="none", loss_normalizer=4, entropy_coeff=0.0))
    assert loss.item() == pytest.approx(0.775 / 4)


def test_off_policy_gradient_flows_through_p_and_ignores_old_log_prob():
    log_p = torch.log(P).requires_grad_(True)
    cfg = core.LossConfig(loss_normalizer=1, entropy_coeff=0.0)
    loss, _ = core.luffy_loss(log_p, torch.log(OLD_P), ADV, RESPONSE_MASK, PREFIX_MASK, cfg)
    loss.backward()
    # d/dlogp [-A p/(p+0.1)] = -A * 0.1 p / (p+0.1)^2
    assert log_p.grad[0, 0].item() == pytest.approx(-0.75 * 0.1 * 0.5 / 0.6 ** 2, rel=1e-5)
    assert log_p.grad[0, 2].item() == 0.0  # padding
    other_old = OLD_P.clone()
    other_old[0] = 0.9  # the demonstration's behaviour log-probs must not matter
    again, _ = core.luffy_loss(torch.log(P), torch.log(other_old), ADV, RESPONSE_MASK, PREFIX_MASK, cfg)
    assert again.item() == pytest.approx(loss.item())


def test_bad_option_is_rejected():
    with pytest.raises(ValueError, match="off_policy_reshape"):
        core.LossConfig(off_policy_reshape="p_div_p_7")


def test_mixed_group_advantage_has_no_std_division():
    scores = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1])
    groups = ["a"] * 8 + ["b"] * 4
    adv = core.group_advantages(scores, groups)
    assert adv[:8].tolist() == pytest.approx([0.75, -0.25, -0.25, 0.75, -0.25, -0.25, -0.25, -0.25])
    assert adv[8:].tolist() == pytest.approx([-0.75, 0.25, 0.25, 0.25])


def test_grpo_with_std():
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0])
    adv = core.group_advantages(scores, [0, 0, 0, 0], use_std=True)
    assert adv.tolist() == pytest.approx([0.75 / 0.5, -0.25 / 0.5, -0.25 / 0.5, -0.25 / 0.5], rel=1e-5)


def test_grpo_split_baseline_over_on_policy_rows_only():
    scores = torch.tensor([1.0, 0, 1, 0, 0, 0, 0, 0])
    off = torch.tensor([True] + [False] * 7)
    adv = core.group_advantages(scores, [0] * 8, is_off_policy=off, split=True)
    assert adv.tolist() == pytest.approx([1 - 1 / 7, -1 / 7, 1 - 1 / 7, -1 / 7, -1 / 7, -1 / 7, -1 / 7, -1 / 7])
    # a single on-policy row: baseline 0, std 1
    adv = core.group_advantages(torch.tensor([1.0, 1.0]), [0, 0], is_off_policy=torch.tensor([True, False]),
                                split=True, use_std=True)
    assert adv.tolist() == pytest.approx([1.0, 1.0], rel=1e-5)


def test_off_policy_copies_are_the_first_of_each_group():
    assert recipe.off_policy_copies(["a", "a", "b", "b", "a", "b"], 1) == [True, False, True, False, False, False]
    assert recipe.off_policy_copies(["a", "a", "a"], 2) == [True, True, False]
    assert not any(recipe.off_policy_copies(["a", "a"], 0))
    mask = core.prefix_mask_from_rows(torch.tensor([True, False]), RESPONSE_MASK)
    assert mask.tolist() == [[True, True, False], [False, False, False]]


def test_row_advantages_follow_the_configs_choice():
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    groups = ["a"] * 3 + ["b"] * 3
    off = torch.tensor([True, False, False, True, False, False])
    mixed = core.row_advantages(scores, groups, off, advantage="grpo", use_std=False)
    assert mixed.tolist() == pytest.approx([1 / 3, -2 / 3, 1 / 3, 2 / 3, -1 / 3, -1 / 3], abs=1e-6)
    split = core.row_advantages(scores, groups, off, advantage="grpo_split", use_std=False)
    assert split.tolist() == pytest.approx([0.5, -0.5, 0.5, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="grpo or grpo_split"):
        core.row_advantages(scores, groups, off, advantage="ppo", use_std=False)
