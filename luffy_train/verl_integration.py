"""LUFFY on verl 0.9 through its extension points (no fork).

- ``verl_agent_loop``: the rollout side (the demonstration agent loop and the manager choosing its copies).
- ``luffy_worker_loss``: the actor loss, set on the workers with ``set_loss_fn``; unlike a registered
  policy loss it receives the whole batch, ``prefix_mask`` included.
- ``LuffyRayTrainer`` / ``LuffyTaskRunner``: install that loss, add ``prefix_mask`` and set the advantages
  before each actor update, log on/off-policy scores; launched with ``run_ppo``. Resuming and SIGTERM go through
  verl's own checkpoints (``verl_resume``).

verl's built-in ``grpo`` estimator runs (``norm_adv_by_std_in_grpo=False``: LUFFY's r - mean(group)), and its
output is then replaced by ``core.row_advantages``, the local engine's, so that ``luffy.advantage`` and
``luffy.use_std`` mean the same on both engines. The reward is ``luffy_train.reward.compute_score``
(``reward.custom_reward_function``). Runs on verl 0.9.x's legacy trainer only (``verl_support`` guards it).
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from verl import DataProto
from verl.trainer.main_ppo_v0 import BaseTaskRunner
from verl.trainer.ppo.ray_trainer import RayPPOTrainer
from verl.utils.metric import AggregationType, Metric
from verl.workers.utils.padding import no_padding_2_padding

from luffy_train import core, recipe, verl_agent_loop
from luffy_train.errors import ConfigError
from luffy_train.verl_resume import ResumableTrainer, StoppableRunner

# Importing verl_agent_loop registers the demonstration agent loop in this process too.
assert verl_agent_loop.DEMONSTRATION_LOOP


# ----------------------------------------------------------------------------------------------------------
# Worker loss


def luffy_worker_loss(model_output: dict[str, torch.Tensor], data: TensorDict, dp_group: Any = None, *,
                      loss_config: recipe.LossConfig) -> tuple[torch.Tensor, dict[str, Any]]:
    """verl worker loss (``set_loss_fn``): ``core.luffy_loss`` on one micro-batch.

    Gradients are not rescaled by the data-parallel size: FSDP averages them over ranks, which is how
    LUFFY's trainer normalised too (its per-rank loss was a token sum over the constant 8192).
    """
    log_prob = no_padding_2_padding(model_output["log_probs"], data)
    entropy = model_output.get("entropy")
    if entropy is not None:
        entropy = no_padding_2_padding(entropy, data)
    fields = data.select("response_mask", "old_log_probs", "advantages", "prefix_mask").to_padded_tensor()
    response_mask = fields["response_mask"].to(torch.bool)
    loss, metrics = core.luffy_loss(log_prob, fields["old_log_probs"], fields["advantages"], response_mask,
                                    fields["prefix_mask"].to(torch.bool), loss_config, entropy=entropy)
    return loss, Metric.from_dict({f"actor/{k}": v for k, v in metrics.items()}, aggregation=AggregationType.MEAN)


# ----------------------------------------------------------------------------------------------------------
# Trainer


def add_luffy_fields(batch: DataProto, cfg: DictConfig) -> dict[str, float]:
    """Add ``prefix_mask`` to a scored batch and set its advantages as the local engine does
    (``core.row_advantages``: grpo or grpo_split, ``luffy.use_std``); returns on/off-policy metrics."""
    response_mask = batch.batch["response_mask"]
    tags = batch.non_tensor_batch.get("is_off_policy")
    is_off = torch.tensor([bool(t) for t in tags] if tags is not None else [False] * len(batch), dtype=torch.bool)
    batch.batch["prefix_mask"] = core.prefix_mask_from_rows(is_off, response_mask)
    scores = batch.batch["token_level_rewards"].sum(-1)
    row_adv = core.row_advantages(scores, list(batch.non_tensor_batch["uid"]), is_off, advantage=cfg.luffy.advantage,
                                    use_std=cfg.luffy.use_std)
    batch.batch["advantages"] = core.token_advantages(row_adv, response_mask).to(batch.batch["advantages"].dtype)
    metrics = {"luffy/off_policy_fraction": float(is_off.float().mean())}
    if is_off.any():
        metrics["luffy/off_policy_score"] = float(scores[is_off].mean())
        if "old_log_probs" in batch.batch.keys():  # noqa: SIM118 (a TensorDict refuses `in`)
            # The demonstrations' mean token log-prob under the weights this step starts from (the last saved ones).
            prefix = batch.batch["prefix_mask"].float()
            metrics["luffy/demonstration_logp"] = float((batch.batch["old_log_probs"] * prefix).sum() / prefix.sum())
    if (~is_off).any():
        metrics["luffy/on_policy_score"] = float(scores[~is_off].mean())
    return metrics


DUMPED_FIELDS = ("prompts", "responses", "input_ids", "attention_mask", "response_mask", "prefix_mask", "advantages",
                 "old_log_probs", "token_level_scores")


def dump_batch(batch: DataProto, path: Path) -> None:
    """The scored batch an actor update trains on (token ids, masks, advantages, rewards, group ids), so that the
    same work can be replayed elsewhere (the local engine, in the engines-agree test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {k: batch.batch[k].cpu() for k in DUMPED_FIELDS if k in batch.batch.keys()}  # noqa: SIM118
    fields["uid"] = list(batch.non_tensor_batch["uid"])
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(fields, tmp)
    tmp.replace(path)  # whole or absent, when a run is killed


class LuffyRayTrainer(ResumableTrainer, RayPPOTrainer):
    """RayPPOTrainer with LUFFY's actor loss and per-token off-policy mask; resumable (``verl_resume``)."""

    def init_workers(self) -> None:
        super().init_workers()
        self.actor_rollout_wg.set_loss_fn(partial(luffy_worker_loss, loss_config=recipe.loss_config(self.config.luffy)))

    def _update_actor(self, batch: DataProto) -> DataProto:
        luffy_metrics = add_luffy_fields(batch, self.config)
        if self.config.luffy.get("batch_dump_dir"):
            dump_batch(batch, Path(self.config.luffy.batch_dump_dir) / f"step_{self.global_steps}.pt")
        output = super()._update_actor(batch)
        output.meta_info["metrics"].update(luffy_metrics)
        return output


class LuffyTaskRunner(BaseTaskRunner):
    """verl's task runner steps (workers, datasets, resource pools), building a LuffyRayTrainer."""

    def run(self, config: DictConfig) -> None:
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
        from verl.utils.config import omega_conf_to_dataclass
        from verl.utils.dataset.rl_dataset import collate_fn
        from verl.workers.config import HFModelConfig

        OmegaConf.resolve(config)
        actor_rollout_cls, worker_group_cls = self.add_actor_rollout_worker(config)
        self.add_critic_worker(config)
        self.add_reward_model_resource_pool(config)
        self.add_teacher_model_resource_pool(config)
        self.add_ref_policy_worker(config, actor_rollout_cls)
        model_config: HFModelConfig = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        tokenizer, processor = model_config.tokenizer, model_config.processor
        train_dataset = create_rl_dataset(config.data.train_files, config.data, tokenizer, processor, is_train=True,
                                          max_samples=config.data.get("train_max_samples", -1))
        val_dataset = create_rl_dataset(config.data.val_files, config.data, tokenizer, processor, is_train=False,
                                        max_samples=config.data.get("val_max_samples", -1))
        trainer = LuffyRayTrainer(
            config=config, tokenizer=tokenizer, processor=processor, role_worker_mapping=self.role_worker_mapping,
            resource_pool_manager=self.init_resource_pool_mgr(config), ray_worker_group_cls=worker_group_cls,
            train_dataset=train_dataset, val_dataset=val_dataset, collate_fn=collate_fn,
            train_sampler=create_rl_sampler(config.data, train_dataset))
        trainer.init_workers()
        trainer.fit()


def validate(cfg: DictConfig) -> None:
    """verl's own config validation (used by ``--dry-run`` and before launching)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Disabled critic")  # LUFFY has no critic, by design
            validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except (AssertionError, ValueError) as err:
        raise ConfigError(f"verl rejects the config: {err}") from err


def launch(cfg: DictConfig) -> None:
    """Start (or join, with RAY_ADDRESS) a Ray cluster and train; needs GPUs."""
    import ray
    from verl.trainer.main_ppo import run_ppo
    from verl.utils.device import auto_set_device

    if not torch.cuda.is_available() and cfg.trainer.device == "cuda":
        raise ValueError("the verl engine needs CUDA GPUs, or trainer.device=cpu (verl_cpu.py's platform, as in "
                         "the luffy-tiny-cpu config); --engine local trains in one process")
    auto_set_device(cfg)
    validate(cfg)
    OmegaConf.resolve(cfg)  # run_ppo copies ray_kwargs out of the config, where interpolations no longer resolve
    env_vars = OmegaConf.select(cfg, "ray_kwargs.ray_init.runtime_env.env_vars", default=None) or {}
    if env_vars.get("VERL_FILE_LOGGER_PATH"):  # verl's file logger opens it before anything makes the run's folder
        Path(env_vars["VERL_FILE_LOGGER_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    run_ppo(cfg, task_runner_class=StoppableRunner(ray.remote(num_cpus=1)(LuffyTaskRunner)))
