"""LUFFY's recipe: what the verl path and the local engine must do alike, written once.

- ``THINK_OPEN`` and ``demonstration_text``: the demonstration as a trainer feeds it (the ``<think>\\n`` the chat
  template already opened is cut from the trace);
- ``LossConfig`` and ``loss_config``: the loss knobs, from the ``luffy`` node of a composed config;
- ``off_policy_copies``: which rows of each group are demonstrations, and ``ADVANTAGES``, the
  ``luffy.advantage`` choices (``core.row_advantages`` computes them);
- ``ALGORITHMS``: what each ``luffy.algorithm`` requires of the config (``config.check`` enforces it).

Light to import: no torch, no verl, nothing of luffy_math but its tags (``verl_agent_loop``, loaded in every Ray
worker, imports it; an import-linter contract in pyproject.toml checks the imports, test_recipe what loads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from luffy_math.thinking import THINK_OPEN


def demonstration_text(demonstration: str, prompt_text: str) -> str:
    """The demonstration's text as the trace that continues ``prompt_text``: when the chat template already
    opened the think block (the prompt ends with ``<think>\\n``), a demonstration that opens it too loses it."""
    if prompt_text.endswith(THINK_OPEN) and demonstration.startswith(THINK_OPEN):
        return demonstration[len(THINK_OPEN):]
    return demonstration


# ----------------------------------------------------------------------------------------------------------
# Loss knobs

# Reshape functions f(p) for off-policy tokens (p = current token probability, behaviour policy taken as 1).
OFF_POLICY_RESHAPES = ("no_reshape", "logp", "p_logp", "square_root", "pow", "p_div_p_0.1", "p_div_p_0.3",
                       "p_div_p_0.5")
# Reshape functions for the on-policy importance ratio r = exp(logp - old_logp).
ON_POLICY_RESHAPES = ("no_reshape", "logp", "p_logp", "square_root", "pow", "p_div_p_0.1", "p_div_p_0.5")
OFF_POLICY_LOSSES = ("shaped", "sft", "none")
ADVANTAGES = ("grpo", "grpo_split")

OffPolicyLoss = Literal["shaped", "sft", "none"]


@dataclass
class LossConfig:
    """The loss knobs LUFFY's scripts turn; the defaults are LUFFY's released setting."""

    off_policy_reshape: str = "p_div_p_0.1"
    on_policy_reshape: str = "no_reshape"
    reshape_weight: float = 1.0  # the weight of logp in "logp"/"p_logp"
    reshape_pow_exp: float = 0.5  # the exponent in "pow"
    # "shaped": LUFFY (-A f(p) on off-policy tokens); "sft": RL with an SFT loss (NLL on off-policy
    # samples, policy gradient on on-policy ones); "none": off-policy tokens get no loss.
    off_policy_loss: OffPolicyLoss = "shaped"
    sft_loss_coef: float = 1.0
    clip_on_policy: bool = False  # LUFFY removes the PPO clip; on-policy GRPO keeps it
    clip_ratio: float = 0.2
    # Token-sum divided by this constant (LUFFY: the padded response length, 8192). None: token mean.
    loss_normalizer: int | None = 8192
    entropy_coeff: float = 0.001

    def __post_init__(self) -> None:
        if self.off_policy_reshape not in OFF_POLICY_RESHAPES:
            raise ValueError(f"off_policy_reshape must be one of {OFF_POLICY_RESHAPES}, got {self.off_policy_reshape!r}")
        if self.on_policy_reshape not in ON_POLICY_RESHAPES:
            raise ValueError(f"on_policy_reshape must be one of {ON_POLICY_RESHAPES}, got {self.on_policy_reshape!r}")
        if self.off_policy_loss not in OFF_POLICY_LOSSES:
            raise ValueError(f"off_policy_loss must be shaped, sft or none, got {self.off_policy_loss!r}")


def loss_config(luffy_node: Any) -> LossConfig:
    """The LossConfig of a composed config's ``luffy`` node (its ``loss`` entries, interpolations resolved);
    a plain mapping with a ``loss`` mapping works too."""
    loss = luffy_node["loss"]
    if type(loss).__module__.startswith("omegaconf"):  # a DictConfig: resolve ${...} against the whole config
        from omegaconf import OmegaConf

        loss = OmegaConf.to_container(loss, resolve=True)
    return LossConfig(**dict(loss))


# ----------------------------------------------------------------------------------------------------------
# Off-policy mixing


def off_policy_copies(group_ids: Sequence[object], n_off_policy: int) -> list[bool]:
    """Which rows are demonstrations: the first ``n_off_policy`` rows of each group, as LUFFY's rollout does.

    ``group_ids`` holds one id per row (rows of one prompt share it, in any order).
    """
    seen: dict[object, int] = {}
    out = []
    for gid in group_ids:
        k = seen.get(gid, 0)
        out.append(k < n_off_policy)
        seen[gid] = k + 1
    return out


# ----------------------------------------------------------------------------------------------------------
# Algorithms


@dataclass(frozen=True)
class Algorithm:
    """What one ``luffy.algorithm`` requires of the config (None: any value)."""

    summary: str
    # How many of the n copies of a prompt are demonstrations: "none" (0), "some" (1 to n-1), "all" (n).
    demonstrations: Literal["none", "some", "all"]
    off_policy_loss: OffPolicyLoss | None = None
    advantage: str | None = None

    def problems(self, n_off_policy: int, n: int, off_policy_loss: str, advantage: str) -> list[str]:
        """The config's departures from this algorithm, each in the words of the key to change."""
        out = []
        if self.demonstrations == "none" and n_off_policy != 0:
            out.append(f"luffy.n_off_policy=0 (no demonstrations), got {n_off_policy}")
        elif self.demonstrations == "some" and not 1 <= n_off_policy < n:
            out.append(f"luffy.n_off_policy between 1 and rollout.n-1={n - 1} (demonstrations beside rollouts), "
                       f"got {n_off_policy}")
        elif self.demonstrations == "all" and n_off_policy != n:
            out.append(f"luffy.n_off_policy equal to rollout.n={n} (demonstrations only), got {n_off_policy}")
        if self.off_policy_loss is not None and off_policy_loss != self.off_policy_loss:
            out.append(f"luffy.loss.off_policy_loss={self.off_policy_loss}, got {off_policy_loss}")
        if self.advantage is not None and advantage != self.advantage:
            out.append(f"luffy.advantage={self.advantage}, got {advantage}")
        return out


ALGORITHMS: dict[str, Algorithm] = {
    "luffy": Algorithm("mixed groups (demonstrations + rollouts), shaped off-policy loss", "some", "shaped"),
    "grpo": Algorithm("on-policy GRPO: rollouts only", "none"),
    "rl_sft": Algorithm("RL with an SFT loss: NLL on demonstrations, policy gradient on rollouts with the "
                        "baseline over the rollouts", "some", "sft", "grpo_split"),
    "sft": Algorithm("SFT: demonstrations only, token-mean NLL", "all", "sft"),
}


def algorithm_problems(luffy_node: Any, n: int) -> list[str]:
    """What the ``luffy`` node (with ``rollout.n`` = ``n``) lacks for the algorithm it names; [] when it fits.
    An unknown algorithm name raises ValueError."""
    name = luffy_node["algorithm"]
    algorithm = ALGORITHMS.get(name)
    if algorithm is None:
        raise ValueError(f"luffy.algorithm must be one of {', '.join(ALGORITHMS)}, got {name!r}")
    return algorithm.problems(int(luffy_node["n_off_policy"]), int(n), str(luffy_node["loss"]["off_policy_loss"]),
                              str(luffy_node["advantage"]))
