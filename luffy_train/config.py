"""Run configurations: our YAML files composed by Hydra on top of verl's own ``ppo_trainer.yaml``.

One config drives both engines: verl reads its usual nodes, the local engine reads the same model, data,
batch and learning-rate settings, and both read the ``luffy`` node (the algorithm knobs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from luffy_train import recipe
from luffy_train.errors import ConfigError
from luffy_util import arg_types
from luffy_util.errors import first_line

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# Entries that must hold a number of the right kind (the flags' own rules, luffy_util.arg_types);
# optional ones may be null.
VALUE_RULES = {
    "actor_rollout_ref.rollout.n": arg_types.positive_int,
    "luffy.n_off_policy": arg_types.non_negative_int,
    "data.train_batch_size": arg_types.positive_int,
    "data.max_prompt_length": arg_types.positive_int,
    "data.max_response_length": arg_types.positive_int,
    "actor_rollout_ref.actor.ppo_mini_batch_size": arg_types.positive_int,
    "actor_rollout_ref.actor.optim.lr": arg_types.non_negative_float,
    "actor_rollout_ref.rollout.temperature": arg_types.non_negative_float,
    "actor_rollout_ref.rollout.top_p": arg_types.probability,
    "trainer.total_epochs": arg_types.positive_int,
    "luffy.local.save_every": arg_types.non_negative_int,
    "luffy.local.seed": arg_types.seed,
}
OPTIONAL_VALUE_RULES = {"luffy.local.max_steps": arg_types.positive_int}
LOCAL_DEVICES = ("auto", "cpu", "cuda")


def verl_searchpath() -> str:
    """The Hydra search path of verl's config group (ppo_trainer.yaml and its parts), which luffy_base.yaml
    extends. Given as a directory, found without importing verl (which loads torch: ~10 s), so that a bad
    override is refused in about a second; it composes the same configs as ``pkg://verl.trainer.config``."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("verl is not installed in this environment (the trainer runs in .venv-train)")
    return f"hydra.searchpath=[file://{Path(spec.submodule_search_locations[0]) / 'trainer' / 'config'}]"


def available() -> list[str]:
    """Config names users can pass to ``--config`` (files starting with _ or luffy_base are partials)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "luffy_base")


def compose(name: str, overrides: list[str] | None = None, engine: str = "verl") -> DictConfig:
    """Compose config ``name`` with Hydra-style ``overrides`` (``a.b=c``, ``+new.key=v``), checked for ``engine``
    (verl or local)."""
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
            cfg = hydra_compose(config_name=name, overrides=[verl_searchpath(), *(overrides or [])])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"bad override for config {name!r}: {first_line(err)}") from err
    finally:
        GlobalHydra.instance().clear()
    check(cfg, engine)
    return cfg


def check_values(cfg: DictConfig) -> None:
    """Counts, sampling and seeds of the right kind and range, in the words the command-line flags use."""
    for key, parse in {**VALUE_RULES, **OPTIONAL_VALUE_RULES}.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None and key in OPTIONAL_VALUE_RULES:
            continue
        try:
            arg_types.check(key, value, parse)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    device = str(cfg.luffy.local.device)
    if device not in LOCAL_DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"luffy.local.device must be auto, cpu, cuda or cuda:N, got {device!r}")


def check(cfg: DictConfig, engine: str = "verl") -> None:
    """Reject values and combinations LUFFY's design does not support, before anything starts; for the verl
    engine, also a verl this integration does not run on (``verl_support``)."""
    check_values(cfg)
    if engine == "verl":
        from luffy_train.verl_support import check_config

        check_config(cfg)
    luffy = cfg.luffy
    n = cfg.actor_rollout_ref.rollout.n
    if luffy.algorithm not in recipe.ALGORITHMS:
        raise ConfigError(f"luffy.algorithm must be one of {', '.join(recipe.ALGORITHMS)}, got {luffy.algorithm!r}")
    if not 0 <= luffy.n_off_policy <= n:
        raise ConfigError(f"luffy.n_off_policy={luffy.n_off_policy} must be between 0 and rollout.n={n}")
    if luffy.advantage not in recipe.ADVANTAGES:
        raise ConfigError(f"luffy.advantage must be grpo or grpo_split, got {luffy.advantage!r}")
    if luffy.advantage == "grpo_split" and luffy.n_off_policy >= n:
        raise ConfigError("grpo_split needs at least one on-policy rollout per prompt (n_off_policy < rollout.n)")
    problems = recipe.algorithm_problems(luffy, n)
    if problems:
        raise ConfigError(f"luffy.algorithm={luffy.algorithm} ({recipe.ALGORITHMS[luffy.algorithm].summary}) "
                          f"needs {'; '.join(problems)}")
    if cfg.actor_rollout_ref.rollout.calculate_log_probs and luffy.n_off_policy > 0:
        raise ConfigError("rollout.calculate_log_probs must be false: demonstrations have no rollout log-probs")
    from luffy_train.reward import RewardGraderMissing, grader_python

    try:
        grader_python(str(luffy.reward_grader))  # its environment must exist before any step needs a reward
    except (ValueError, RewardGraderMissing) as err:
        raise ConfigError(str(err)) from None


def to_yaml(cfg: DictConfig) -> str:
    """The fully resolved config, as ``--dry-run`` prints it."""
    return OmegaConf.to_yaml(cfg, resolve=True)
