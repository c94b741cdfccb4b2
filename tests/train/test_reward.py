"""LUFFY's v3 reward (luffy_train.reward) on top of luffy_math."""

from __future__ import annotations

from luffy_train.reward import compute_score, luffy_reward


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
