"""Short names for the released LUFFY checkpoints, with the sampling their model cards use.

``luffy-serve --model luffy-qwen-math-1.5b-zero`` resolves to the hub id; any other value (a hub id or a local
directory) is served as given, with the same card defaults unless the user overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Checkpoint:
    name: str
    hub_id: str
    # Used when a request leaves them out (vLLM's --override-generation-config keys).
    sampling: dict[str, float | int] = field(default_factory=lambda: {"temperature": 0.6, "max_new_tokens": 8192})


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in [
        Checkpoint("luffy-qwen-math-1.5b-zero", "Elliott/LUFFY-Qwen-Math-1.5B-Zero"),
        Checkpoint("luffy-qwen-math-7b-zero", "Elliott/LUFFY-Qwen-Math-7B-Zero"),
        Checkpoint("luffy-qwen-math-7b-sft", "Elliott/Qwen2.5-Math-7B-SFT"),
        Checkpoint("luffy-qwen-math-7b-sft-rl", "Elliott/Qwen2.5-Math-7B-SFT-RL"),
        Checkpoint("luffy-qwen-instruct-7b", "Elliott/LUFFY-Qwen-Instruct-7B"),
    ]
}

DEFAULT_MODEL = "luffy-qwen-math-1.5b-zero"
DEFAULT_SAMPLING: dict[str, float | int] = {"temperature": 0.6, "max_new_tokens": 8192}


def resolve(model: str) -> tuple[str, str, dict[str, float | int]]:
    """(what vLLM loads, the name clients use, default sampling) for a registry name, hub id or directory."""
    checkpoint = CHECKPOINTS.get(model.lower())
    if checkpoint is not None:
        return checkpoint.hub_id, checkpoint.name, dict(checkpoint.sampling)
    return model, model, dict(DEFAULT_SAMPLING)
