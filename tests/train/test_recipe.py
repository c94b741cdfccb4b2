"""The recipe both trainers share: the demonstration text, the loss config and the algorithm table, with every
shipped config fitting it; and the local engine's collate, which scores nothing."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from luffy_train import core, recipe
from luffy_train.config import available, compose
from luffy_train.errors import ConfigError
from luffy_train.local_engine import Row, collate

REPO = Path(__file__).resolve().parents[2]


def test_demonstration_text_drops_the_think_the_template_opened():
    demo = "<think>\nAdd.\n</think>\n\n$\\boxed{7}$"
    assert recipe.demonstration_text(demo, "<|im_start|>assistant\n<think>\n") == "Add.\n</think>\n\n$\\boxed{7}$"
    assert recipe.demonstration_text(demo, "<|im_start|>assistant\n") == demo  # the template opened nothing
    bare = "Add.\n</think>\n\n$\\boxed{7}$"
    assert recipe.demonstration_text(bare, "assistant\n<think>\n") == bare
    assert recipe.THINK_OPEN == "<think>\n"


def test_loss_config_reads_the_luffy_node_with_its_interpolations():
    cfg = compose("luffy-qwen-math-7b-zero", ["data.max_response_length=512",
                                              "actor_rollout_ref.actor.entropy_coeff=0.01"])
    loss = recipe.loss_config(cfg.luffy)
    assert loss == recipe.LossConfig(loss_normalizer=512, entropy_coeff=0.01)
    assert core.LossConfig is recipe.LossConfig
    assert recipe.loss_config({"loss": {"clip_on_policy": True}}) == recipe.LossConfig(clip_on_policy=True)
    with pytest.raises(ValueError, match="off_policy_loss"):
        recipe.loss_config({"loss": {"off_policy_loss": "half"}})


@pytest.mark.parametrize("name", available())
def test_every_config_fits_its_algorithm(name):
    cfg = compose(name)
    assert cfg.luffy.algorithm in recipe.ALGORITHMS
    assert recipe.algorithm_problems(cfg.luffy, cfg.actor_rollout_ref.rollout.n) == []


ALGORITHM_MISFITS = [
    ("luffy-qwen-math-7b-zero", ["luffy.n_off_policy=0"],
     "luffy.algorithm=luffy (mixed groups (demonstrations + rollouts), shaped off-policy loss) needs "
     "luffy.n_off_policy between 1 and rollout.n-1=7 (demonstrations beside rollouts), got 0"),
    ("luffy-qwen-math-7b-zero", ["luffy.loss.off_policy_loss=sft"], "needs luffy.loss.off_policy_loss=shaped, got sft"),
    ("grpo-on-policy", ["luffy.n_off_policy=1"], "needs luffy.n_off_policy=0 (no demonstrations), got 1"),
    ("rl-sft-loss", ["luffy.advantage=grpo"], "needs luffy.advantage=grpo_split, got grpo"),
    ("sft", ["actor_rollout_ref.rollout.n=2"],
     "needs luffy.n_off_policy equal to rollout.n=2 (demonstrations only), got 1"),
]


@pytest.mark.parametrize(("name", "overrides", "message"), ALGORITHM_MISFITS,
                         ids=[f"{n}-{o[0]}" for n, o, _ in ALGORITHM_MISFITS])
def test_a_config_that_does_not_fit_its_algorithm_is_refused(name, overrides, message):
    with pytest.raises(ConfigError) as err:
        compose(name, overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ConfigError, match="luffy.algorithm must be one of luffy, grpo, rl_sft, sft, got 'dpo'"):
        compose("luffy-qwen-math-7b-zero", ["luffy.algorithm=dpo"])


def test_collate_pads_and_scores_nothing():
    rows = [Row(0, [5, 6], [7, 8, 9], True), Row(0, [5, 6], [3], False), Row(1, [4], [2, 2], False)]
    batch = collate(rows, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 3, 0, 0], [0, 4, 2, 2, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0]]
    assert batch.response_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert batch.is_off_policy.tolist() == [True, False, False] and batch.group_ids == [0, 0, 1]
    assert batch.prompt_len == 2 and [batch.response_ids(i) for i in range(3)] == [[7, 8, 9], [3], [2, 2]]
    assert all(math.isnan(r) for r in batch.rewards.tolist())  # unscored, and it shows
    scored = collate(rows, pad_id=0, rewards=[1.0, 0.0, 1.0])
    assert scored.rewards.tolist() == [1.0, 0.0, 1.0] and scored.rewards.dtype == torch.float32
    assert scored.select([2]).response_ids(0) == [2, 2]
    with pytest.raises(ValueError, match="2 rewards for 3 rows"):
        collate(rows, pad_id=0, rewards=[1.0, 0.0])


def test_the_recipe_is_light_to_import():
    """No torch, numpy, verl, sympy or omegaconf (loss_config imports it only for a DictConfig), and of
    luffy_math only the think tags (and the light package and answer module they come with)."""
    code = ("import sys, luffy_train.recipe; heavy = {'torch', 'numpy', 'verl', 'sympy', 'omegaconf'} & "
            "set(sys.modules); heavy |= {m for m in sys.modules if m.split('.')[0] == 'luffy_math'} - "
            "{'luffy_math', 'luffy_math.thinking', 'luffy_math.answer'}; print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
