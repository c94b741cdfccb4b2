"""What a verl Ray worker loads from us: verl imports ``luffy_train.verl_agent_loop`` in every process (the
``verl.plugins`` entry point), so it must not bring the reward, luffy_math's grading or its worker runtime
(pebble): of luffy_math only the think tags, which the recipe reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS_HEAVY = ("luffy_math", "pebble", "luffy_train.reward", "luffy_train.local_engine", "luffy_train.config")
LIGHT = ("luffy_math", "luffy_math.thinking", "luffy_math.answer")


def test_the_plugin_module_leaves_the_reward_and_luffy_math_out():
    code = ("import sys, luffy_train.verl_agent_loop; "
            f"print(sorted(m for m in sys.modules if (m.split('.')[0] in {{'luffy_math', 'pebble'}} "
            f"or m in {OURS_HEAVY!r}) and m not in {LIGHT!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
