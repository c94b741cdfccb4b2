"""The verl 0.9 integration, exercised with verl's own classes on the CPU.

verl cannot run a training step without a GPU (no CPU platform: FSDP workers, NCCL, vLLM servers).
What needs the GPU is replaced, and only that: the FSDP engine's forward pass (its per-token log-probs,
built here in the engine's packed layout) and the rollout server (a stub that fails if it is called).
Everything else is verl's code: DataProto, to_tensordict, left_right_2_no_padding, no_padding_2_padding,
the GRPO estimator, the agent-loop base class and registry, config validation and dataclasses.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from verl import DataProto
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.metric import Metric
from verl.workers.utils.padding import left_right_2_no_padding

from luffy_train import core
from luffy_train.config import available, compose
from luffy_train.verl_agent_loop import DEMONSTRATION_LOOP, LuffyDemonstrationLoop, assign_agent_loops
from luffy_train.verl_integration import add_luffy_fields, luffy_worker_loss, validate

DEMO = "<think>\nAdd them.\n</think>\n\nThe answer is $\\boxed{7}$."


def mixed_batch(seed: int = 0) -> tuple[DataProto, dict[str, torch.Tensor]]:
    """Two prompts x (1 demonstration + 2 rollouts), left-padded prompts, right-padded responses."""
    g = torch.Generator().manual_seed(seed)
    prompt_lens, resp_lens = [3, 3, 3, 4, 4, 4], [5, 2, 4, 3, 5, 1]
    P, R, B = 4, 5, 6
    prompts = torch.zeros(B, P, dtype=torch.long)
    responses = torch.zeros(B, R, dtype=torch.long)
    attention = torch.zeros(B, P + R, dtype=torch.long)
    for i, (pl, rl) in enumerate(zip(prompt_lens, resp_lens, strict=True)):
        prompts[i, P - pl:] = torch.randint(1, 50, (pl,), generator=g)
        responses[i, :rl] = torch.randint(1, 50, (rl,), generator=g)
        attention[i, P - pl:P + rl] = 1
    response_mask = attention[:, P:]
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    token_level_rewards = torch.zeros(B, R)
    for i, rl in enumerate(resp_lens):
        token_level_rewards[i, rl - 1] = scores[i]
    batch = DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "input_ids": torch.cat([prompts, responses], 1),
                 "attention_mask": attention, "position_ids": position_ids, "response_mask": response_mask,
                 "token_level_rewards": token_level_rewards,
                 "old_log_probs": -torch.rand(B, R, generator=g) * 2},
        non_tensors={"uid": np.array(["a"] * 3 + ["b"] * 3, dtype=object),
                     "is_off_policy": np.array([True, None, None, True, None, None], dtype=object)})
    adv, _ = compute_grpo_outcome_advantage(token_level_rewards, response_mask, batch.non_tensor_batch["uid"],
                                            norm_adv_by_std_in_grpo=False)
    batch.batch["advantages"] = adv
    # What the FSDP engine's forward would produce: per-token log-probs / entropy for each packed sequence,
    # position t holding the prediction of token t+1.
    true_logp = -torch.rand(B, R, generator=g) * 3
    true_entropy = torch.rand(B, R, generator=g)
    packed_logp, packed_entropy = [], []
    for i, (pl, rl) in enumerate(zip(prompt_lens, resp_lens, strict=True)):
        lp, en = torch.full((pl + rl,), -99.0), torch.full((pl + rl,), 99.0)
        lp[pl - 1:pl - 1 + rl] = true_logp[i, :rl]
        en[pl - 1:pl - 1 + rl] = true_entropy[i, :rl]
        packed_logp.append(lp)
        packed_entropy.append(en)
    model_output = {"log_probs": torch.nested.as_nested_tensor(packed_logp, layout=torch.jagged),
                    "entropy": torch.nested.as_nested_tensor(packed_entropy, layout=torch.jagged),
                    "true_logp": true_logp, "true_entropy": true_entropy}
    return batch, model_output


def test_grpo_without_std_on_a_mixed_group_is_luffys_advantage():
    batch, _ = mixed_batch()
    adv = batch.batch["advantages"]
    # group a: [1, 0, 1] -> mean 2/3; group b: [1, 0, 0] -> mean 1/3; broadcast over valid tokens
    assert adv[:, 0].tolist() == pytest.approx([1 / 3, -2 / 3, 1 / 3, 2 / 3, -1 / 3, -1 / 3], abs=1e-6)
    assert (adv[1, 2:] == 0).all()
    ours = core.group_advantages(torch.tensor([1.0, 0, 1, 1, 0, 0]), list(batch.non_tensor_batch["uid"]))
    assert torch.allclose(core.token_advantages(ours, batch.batch["response_mask"]), adv, atol=1e-6)


def test_worker_loss_sees_prefix_mask_through_verls_data_path():
    cfg = compose("luffy-qwen-math-7b-zero")
    batch, model_output = mixed_batch()
    metrics = add_luffy_fields(batch, cfg)  # what LuffyRayTrainer._update_actor does
    assert metrics["luffy/off_policy_score"] == 1.0 and metrics["luffy/on_policy_score"] == 0.25
    td = left_right_2_no_padding(batch.to_tensordict())  # what RayPPOTrainer._update_actor sends
    assert "prefix_mask" in td and td["input_ids"].is_nested
    loss_config = core.LossConfig(entropy_coeff=0.001, loss_normalizer=8192)
    loss, metrics = luffy_worker_loss({"log_probs": model_output["log_probs"], "entropy": model_output["entropy"]},
                                      td, loss_config=loss_config)
    b = batch.batch
    prefix = b["prefix_mask"]
    assert prefix.tolist()[0] == [True] * 5 and prefix.tolist()[3] == [True] * 3 + [False] * 2
    assert not prefix[[1, 2, 4, 5]].any()
    expected, _ = core.luffy_loss(model_output["true_logp"], b["old_log_probs"], b["advantages"],
                                  b["response_mask"], prefix, loss_config, entropy=model_output["true_entropy"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert isinstance(metrics["actor/off_ratio_mean"], Metric)
    assert {"actor/on_pg_loss", "actor/off_pg_loss", "actor/off_policy_prob", "actor/on_policy_prob"} <= set(metrics)


def test_grpo_split_is_applied_before_the_update():
    cfg = compose("rl-sft-loss")
    batch, _ = mixed_batch()
    add_luffy_fields(batch, cfg)
    # group a on-policy scores [0, 1] -> mean 0.5; group b [0, 0] -> 0
    assert batch.batch["advantages"][:, 0].tolist() == pytest.approx([0.5, -0.5, 0.5, 1.0, 0.0, 0.0])


def test_the_advantages_are_the_recipes_on_verl_too():
    """verl's grpo estimate is replaced by core.row_advantages: the same numbers with LUFFY's settings, and
    luffy.use_std means on verl what it means on the local engine."""
    batch, _ = mixed_batch()
    verls = batch.batch["advantages"].clone()
    add_luffy_fields(batch, compose("luffy-qwen-math-7b-zero"))
    assert torch.allclose(batch.batch["advantages"], verls, atol=1e-6)
    batch, _ = mixed_batch()
    add_luffy_fields(batch, compose("luffy-qwen-math-7b-zero", ["luffy.use_std=true"]))
    scores, uids = torch.tensor([1.0, 0, 1, 1, 0, 0]), list(batch.non_tensor_batch["uid"])
    expected = core.token_advantages(core.group_advantages(scores, uids, use_std=True), batch.batch["response_mask"])
    assert torch.allclose(batch.batch["advantages"], expected) and not torch.allclose(expected, verls)


class NoServer:
    """The rollout server needs a GPU; the demonstration loop must not call it."""

    async def generate(self, **kwargs):
        raise AssertionError("the demonstration loop called the rollout server")


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "qwen_model_dir"])  # <think>: one token, three tokens
def test_agent_loop_run_returns_the_demonstration(fixture, request):
    from transformers import AutoTokenizer

    model_dir = request.getfixturevalue(fixture)
    assert _agent_loop_registry[DEMONSTRATION_LOOP]["_target_"].endswith("LuffyDemonstrationLoop")
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = compose("luffy-qwen-math-7b-zero", [f"actor_rollout_ref.model.path={model_dir}",
                                              "data.max_response_length=64"])
    def make_loop() -> LuffyDemonstrationLoop:
        return LuffyDemonstrationLoop(trainer_config=DictConfigWrap(cfg), server_manager=NoServer(), tokenizer=tok,
                                      processor=None, dataset_cls=RLHFDataset, data_config=DictConfigWrap(cfg.data),
                                      hf_model_type="qwen2")

    async def run(**row):  # verl builds each agent loop inside the worker's running event loop
        return await make_loop().run({"temperature": 1.0}, **row)

    messages = [{"role": "user", "content": "What is 3+4?"}]
    row = {"raw_prompt": np.array(messages, dtype=object),  # parquet columns arrive as numpy arrays
           "target": np.array([{"role": "assistant", "content": DEMO}], dtype=object),
           "reward_model": {"ground_truth": "7"}, "index": 0}
    out = asyncio.run(run(**row))
    expected_prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert out.prompt_ids == expected_prompt
    assert tok.decode(out.prompt_ids).endswith("<think>\n")
    # the template opened <think>, so the trace continues after it, and ends with EOS
    assert out.response_ids == tok.encode(DEMO.removeprefix("<think>\n"), add_special_tokens=False) + [tok.eos_token_id]
    assert out.response_mask == [1] * len(out.response_ids)
    # prompt + trace read back as one text with a single <think>\n
    text = tok.decode(out.prompt_ids + out.response_ids)
    assert text.endswith("<|im_start|>assistant\n" + DEMO + "<|im_end|>") and text.count("<think>") == 1
    assert out.extra_fields["is_off_policy"] is True
    with pytest.raises(ValueError, match="target"):
        asyncio.run(run(raw_prompt=messages, target=None))


def test_first_copy_of_each_prompt_runs_the_demonstration_loop():
    prompts = DataProto.from_dict(tensors={"x": torch.zeros(3, 1)},
                                  non_tensors={"uid": np.array(["u0", "u1", "u2"], dtype=object)})
    repeated = prompts.repeat(repeat_times=4, interleave=True)  # as RayPPOTrainer.fit does with rollout.n
    off = assign_agent_loops(repeated, 1, "single_turn_agent")
    names = repeated.non_tensor_batch["agent_name"].tolist()
    assert names == ([DEMONSTRATION_LOOP] + ["single_turn_agent"] * 3) * 3
    assert off.sum() == 3


@pytest.mark.parametrize("name", available())
def test_every_config_composes_and_passes_verls_validation(name):
    cfg = compose(name)
    validate(cfg)
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert rollout.agent.agent_loop_manager_class == "luffy_train.verl_agent_loop.LuffyAgentLoopManager"
    assert cfg.trainer.use_v1 is False
    assert cfg.algorithm.norm_adv_by_std_in_grpo is False and not actor.use_kl_loss
    loss = core.LossConfig(**cfg.luffy.loss)
    if name == "luffy-tiny-cpu":  # the recipe shrunk for one CPU: groups of 1 demonstration + 3 rollouts
        assert (cfg.luffy.n_off_policy, rollout.n, loss.off_policy_reshape, loss.clip_on_policy) == (
            1, 4, "p_div_p_0.1", False)
        assert (cfg.trainer.device, actor.strategy, rollout.tensor_model_parallel_size) == ("cpu", "fsdp2", 1)
    elif name.startswith("toy-luffy"):  # the toy task's groups, with and without shaping (toy-luffy-no-shaping)
        shaping = "no_reshape" if name.endswith("no-shaping") else "p_div_p_0.1"
        assert (cfg.luffy.n_off_policy, rollout.n, loss.off_policy_reshape, loss.clip_on_policy) == (
            1, 4, shaping, False)
        assert (cfg.luffy.advantage, actor.entropy_coeff) == ("grpo_split", 0.0)
    elif cfg.luffy.algorithm == "luffy":
        assert (cfg.luffy.n_off_policy, rollout.n, loss.off_policy_reshape, loss.clip_on_policy) == (
            1, 8, "p_div_p_0.1", False)
        assert (loss.loss_normalizer, loss.entropy_coeff, actor.optim.lr) == (8192, 0.001, 1e-6)
        assert (cfg.data.train_batch_size, actor.ppo_mini_batch_size, rollout.val_kwargs.temperature) == (128, 64, 0.6)
    if cfg.luffy.algorithm == "grpo":
        assert cfg.luffy.n_off_policy == 0 and loss.clip_on_policy
