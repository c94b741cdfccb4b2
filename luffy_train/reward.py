"""LUFFY's training reward (its "v3"), on top of luffy_math.

The response must close its reasoning: ``"<think>\\n"`` is prepended (the chat template opens the think
block in the prompt), the reward is 0 unless ``</think>`` follows, else Math-Verify decides whether the
text after the first ``</think>`` equals ``"$" + gold + "$"``. Grading itself lives in luffy_math.
"""

from __future__ import annotations

from typing import Any

from luffy_math import grade, split_reasoning

THINK_OPEN = "<think>\n"


def luffy_reward(response: str, gold: str | list[str], timeout: float = 10.0) -> float:
    """1.0 if the reasoning is closed and the final answer matches ``gold``, else 0.0."""
    reasoning, answer = split_reasoning(THINK_OPEN + response)
    if reasoning is None:
        return 0.0
    # luffy_math's math_verify mode parses the gold as inline math ("$" + gold + "$"), as LUFFY's v3 does.
    return 1.0 if grade(answer, gold, mode="math_verify", timeout=timeout).correct else 0.0


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  **kwargs: Any) -> float:
    """verl's custom reward function signature (``reward.custom_reward_function``)."""
    return luffy_reward(solution_str, ground_truth)
