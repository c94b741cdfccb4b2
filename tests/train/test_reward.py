"""LUFFY's v3 reward (luffy_train.reward) on top of luffy_math."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from luffy_math.grader import latex_parser_complete
from luffy_math.pins import exact_python
from luffy_train.config import compose
from luffy_train.errors import ConfigError
from luffy_train.reward import DEFAULT_REWARD_GRADER, SERVING_PYTHON_ENV, compute_score, luffy_reward, score


def test_closed_reasoning_with_right_answer_scores_one():
    # The prompt opened <think>; the response closes it and boxes the answer.
    assert luffy_reward("Adding.\n</think>\n\nThe answer is $\\boxed{7}$.<|im_end|>", "7") == 1.0


def test_wrong_answer_scores_zero():
    assert luffy_reward("Adding.\n</think>\n\nThe answer is $\\boxed{8}$.", "7") == 0.0


def test_missing_think_close_scores_zero_even_if_right():
    assert luffy_reward("The answer is $\\boxed{7}$.", "7") == 0.0


def test_only_text_after_first_think_close_is_graded():
    # A right answer inside the reasoning does not count.
    response = "Maybe \\boxed{7}.\n</think>\n\nSo \\boxed{9}."
    assert luffy_reward(response, "7") == 0.0


def test_verl_signature():
    assert compute_score("", "x</think>\\boxed{7}", "7", extra_info={"index": 0}) == 1.0


def test_score_gives_each_pairs_reward_in_order():
    """The batch form (the local engine scores its rollouts with it), graded side by side in the workers."""
    responses = ["x</think>\\boxed{7}", "\\boxed{7}", "x</think>\\boxed{8}", "Maybe \\boxed{7}</think>\\boxed{9}"]
    assert score(responses, ["7"] * 4) == [1.0, 0.0, 0.0, 0.0]
    assert score(responses, ["7"] * 4, grader="here") == [1.0, 0.0, 0.0, 0.0]
    assert score([], []) == []
    with pytest.raises(ValueError, match="2 responses but 1 golds"):
        score(responses[:2], ["7"])


def test_importing_the_reward_starts_no_worker_runtime():
    """verl's Ray workers import this module: its pools (pebble, an exit hook) come with the first reward."""
    script = ("import sys, luffy_train.reward\n"
              "print(sorted(m for m in ('pebble', 'tqdm', 'luffy_math.workers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


# ---- which Math-Verify decides: the reward graded in another environment's workers ----------------------

SUITE = json.loads((Path(__file__).parents[1] / "math" / "data" / "math_verify_cases.json").read_text())["cases"]
CLOSED = "Let me work it out.\n</think>\n\n"


def _serving_label(case: dict) -> int:
    """The serving environment's math_verify label (tests/math/test_math_verify_suite.py checks it there)."""
    return case.get("plain_mode", {"expected": case["expected"]})["expected"]


def _rewards(grader: str) -> list[int]:
    return [int(luffy_reward(CLOSED + case["pred"], case["gold"], grader=grader)) for case in SUITE]


def test_this_environments_parser_is_stale():
    """The premise: in verl's environment Math-Verify fails percents, so the reward cannot be graded here."""
    assert not latex_parser_complete()
    percents = [i for i, case in enumerate(SUITE) if "%" in case["pred"] + case["gold"]]
    here = _rewards("here")
    assert len(percents) >= 5
    assert [i for i in percents if here[i] != _serving_label(SUITE[i])]  # wrong labels on percents, here


def test_serving_grader_reward_is_the_serving_label_on_math_verifys_suite():
    rewards = _rewards("serving")
    assert [i for i, (r, case) in enumerate(zip(rewards, SUITE, strict=True)) if r != _serving_label(case)] == []


def test_exact_grader_reward_is_luffys_v3_under_luffys_pins():
    """The reference: LUFFY's v3 check itself, ``verify(parse("$" + gold + "$"), parse(solution))``, run by
    math-verify 0.6.0 in the pinned environment with nothing of luffy_math in between."""
    script = ("import json, sys\nfrom math_verify import parse, verify\n"
              "for case in json.load(sys.stdin):\n"
              "    print(int(verify(parse('$' + case['gold'] + '$'), parse(case['pred']))))\n")
    out = subprocess.run([exact_python(), "-c", script], input=json.dumps(SUITE), capture_output=True, text=True,
                         check=True, timeout=600)
    reference = [int(line) for line in out.stdout.split()]
    rewards = _rewards("exact")
    assert len(reference) == len(SUITE)
    assert [i for i, (r, ref) in enumerate(zip(rewards, reference, strict=True)) if r != ref] == []
    # and the two environments do label some of the suite differently (else the choice would not matter)
    assert rewards != [_serving_label(case) for case in SUITE]


def test_the_config_chooses_the_grader_and_verl_passes_it_on(monkeypatch):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = compose("luffy-qwen-math-7b-zero")
    assert cfg.luffy.reward_grader == DEFAULT_REWARD_GRADER == "exact"
    assert get_custom_reward_fn(cfg)("", "x</think>\\boxed{0,006}", "0.006") == 0.0  # math-verify 0.6.0
    serving = compose("luffy-qwen-math-7b-zero", ["luffy.reward_grader=serving"])
    assert get_custom_reward_fn(serving)("", "x</think>\\boxed{0,006}", "0.006") == 1.0  # math-verify 0.9.0
    with pytest.raises(ConfigError, match="reward_grader must be one of"):
        compose("luffy-qwen-math-7b-zero", ["luffy.reward_grader=nope"])
    monkeypatch.setenv(SERVING_PYTHON_ENV, "/nonexistent/python")
    with pytest.raises(ConfigError, match="setup.sh serve"):
        compose("luffy-qwen-math-7b-zero", ["luffy.reward_grader=serving"])
