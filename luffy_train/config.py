"""Run configurations: our YAML files composed by Hydra on top of verl's own ``ppo_trainer.yaml``.

One config drives both engines: verl reads its usual nodes, the local engine reads the same model, data,
batch and learning-rate settings, and both read the ``luffy`` node (the algorithm knobs).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# verl's config group (ppo_trainer.yaml and its parts), which luffy_base.yaml extends.
VERL_SEARCHPATH = "hydra.searchpath=[pkg://verl.trainer.config]"


class ConfigError(ValueError):
    """The config name or an override is wrong; the message says which."""


def available() -> list[str]:
    """Config names users can pass to ``--config`` (files starting with _ or luffy_base are partials)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "luffy_base")


def compose(name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose config ``name`` with Hydra-style ``overrides`` (``a.b=c``, ``+new.key=v``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if name not in available():
        raise ConfigError(f"unknown config {name!r}; choose one of: {', '.join(available())}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = hydra_compose(config_name=name, overrides=[VERL_SEARCHPATH, *(overrides or [])])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"bad override for config {name!r}: {str(err).splitlines()[0]}") from err
    finally:
        GlobalHydra.instance().clear()
    check(cfg)
    return cfg


def check(cfg: DictConfig) -> None:
    """Reject combinations LUFFY's design does not support, before anything starts."""
    luffy = cfg.luffy
    n = cfg.actor_rollout_ref.rollout.n
    if luffy.algorithm not in ("luffy", "grpo", "rl_sft", "sft"):
        raise ConfigError(f"luffy.algorithm must be luffy, grpo, rl_sft or sft, got {luffy.algorithm!r}")
    if not 0 <= luffy.n_off_policy <= n:
        raise ConfigError(f"luffy.n_off_policy={luffy.n_off_policy} must be between 0 and rollout.n={n}")
    if luffy.advantage not in ("grpo", "grpo_split"):
        raise ConfigError(f"luffy.advantage must be grpo or grpo_split, got {luffy.advantage!r}")
    if luffy.advantage == "grpo_split" and luffy.n_off_policy >= n:
        raise ConfigError("grpo_split needs at least one on-policy rollout per prompt (n_off_policy < rollout.n)")
    if luffy.algorithm == "sft" and luffy.n_off_policy != n:
        raise ConfigError("sft trains on demonstrations only: set luffy.n_off_policy equal to rollout.n")
    if cfg.actor_rollout_ref.rollout.calculate_log_probs and luffy.n_off_policy > 0:
        raise ConfigError("rollout.calculate_log_probs must be false: demonstrations have no rollout log-probs")


def to_yaml(cfg: DictConfig) -> str:
    """The fully resolved config, as ``--dry-run`` prints it."""
    return OmegaConf.to_yaml(cfg, resolve=True)
