"""The rollout side of LUFFY on verl: one copy per group is the demonstration, not a generation.

- ``LuffyDemonstrationLoop`` (registered as ``luffy_demonstration``): returns the row's demonstration
  (+ EOS) as the response without calling the rollout server, tagged ``is_off_policy``.
- ``LuffyAgentLoopManager``: picks which copies of each prompt run that loop (the first
  ``luffy.n_off_policy`` of each uid), since an agent loop is not told its copy index.

This module is the ``verl.plugins`` entry point: verl imports it in every process (Ray workers
included), which registers the agent loop by name before any batch is generated. Keep it light: it imports
``recipe``, not ``reward`` or luffy_math (an import-linter contract in pyproject.toml checks it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# isort: off
import luffy_train.verl_cpu  # noqa: F401  (before verl's modules: the CPU platform must exist before verl picks one)
# isort: on
from verl import DataProto
from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopManager,
    AgentLoopMetrics,
    AgentLoopOutput,
)
from verl.experimental.agent_loop.agent_loop import register as register_agent_loop
from verl.utils.ray_utils import auto_await

from luffy_train import recipe

DEMONSTRATION_LOOP = "luffy_demonstration"


@register_agent_loop(DEMONSTRATION_LOOP)
class LuffyDemonstrationLoop(AgentLoopBase):
    """Returns the row's ``target`` trace (+ EOS) as the response; no generation."""

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        target = kwargs.get("target")
        if target is None or len(target) == 0:
            raise ValueError("luffy_demonstration needs a 'target' column (the demonstration) in the training data")
        text = target[0]["content"]
        prompt_ids = await self.ct_build_initial_tokens(list(kwargs["raw_prompt"]))
        text = recipe.demonstration_text(text, self.tokenizer.decode(prompt_ids))
        response_ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        response_ids = response_ids[: self.rollout_config.response_length]
        return AgentLoopOutput(
            prompt_ids=prompt_ids, response_ids=response_ids, response_mask=[1] * len(response_ids),
            num_turns=2, metrics=AgentLoopMetrics(),
            extra_fields={"is_off_policy": True, "turn_scores": [], "tool_rewards": []},
        )


def assign_agent_loops(batch: DataProto, n_off_policy: int, default_loop: str) -> np.ndarray:
    """Tag the first ``n_off_policy`` copies of each uid with the demonstration loop (in place)."""
    off = np.array(recipe.off_policy_copies(list(batch.non_tensor_batch["uid"]), n_off_policy), dtype=bool)
    names = np.array([DEMONSTRATION_LOOP if o else default_loop for o in off], dtype=object)
    batch.non_tensor_batch["agent_name"] = names
    return off


class LuffyAgentLoopManager(AgentLoopManager):
    """verl's manager, with the per-copy choice of agent loop LUFFY needs (training batches only)."""

    @auto_await  # as verl's own: the trainer calls it without awaiting
    async def generate_sequences(self, prompts: DataProto) -> DataProto:
        n_off = int(self.config.luffy.n_off_policy)
        if not prompts.meta_info.get("validate", False) and n_off > 0:
            assign_agent_loops(prompts, n_off, self.rollout_config.agent.default_agent_loop)
        return await super().generate_sequences(prompts)
