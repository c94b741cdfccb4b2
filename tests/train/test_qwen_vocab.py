"""The trainer's demonstration and reward handling on the real Qwen2.5 vocabulary, where ``<think>`` and
``</think>`` are three ordinary tokens each (``<th`` ``ink`` ``>``), as in LUFFY-Qwen-Math-*-Zero."""

from __future__ import annotations

import pytest

from luffy_train.data import Example
from luffy_train.local_engine import LocalSettings, LocalTrainer, demonstration_ids, prompt_ids
from luffy_train.recipe import LossConfig
from luffy_train.reward import luffy_reward

DEMO = "<think>\nLet me add the numbers.\n</think>\n\nThe answer is $\\boxed{7}$."
EXAMPLE = Example(messages=[{"role": "user", "content": "What is 3+4?"}], demonstration=DEMO, gold="7")


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_model_dir)


def test_the_template_opens_think_in_three_tokens_and_the_demonstration_continues_after_it(qwen_tokenizer):
    tok = qwen_tokenizer
    prompt = prompt_ids(tok, EXAMPLE)
    assert tok.convert_ids_to_tokens(prompt[-3:]) == ["<th", "ink", ">Ċ"]  # ">\n" is one token here
    demo = demonstration_ids(tok, EXAMPLE, tok.decode(prompt), max_len=64)
    assert demo[-1] == tok.eos_token_id
    assert tok.decode(demo, skip_special_tokens=True) == DEMO.removeprefix("<think>\n")
    # The trace joins the prompt where one tokenization of the whole text would cut it: nothing doubled.
    whole = tok.decode(prompt) + DEMO.removeprefix("<think>\n") + "<|im_end|>"
    assert prompt + demo == tok(whole, add_special_tokens=False)["input_ids"]
    tokens = tok.convert_ids_to_tokens(demo)
    assert tokens[tokens.index("</"):][:3] == ["</", "think", ">ĊĊ"]  # "\n</think>\n\n": no think token
    # A demonstration that does not open the block is fed as it is.
    bare = Example(messages=EXAMPLE.messages, demonstration=DEMO.removeprefix("<think>\n"), gold="7")
    assert demonstration_ids(tok, bare, tok.decode(prompt), max_len=64) == demo
    assert len(demonstration_ids(tok, EXAMPLE, tok.decode(prompt), max_len=5)) == 5


def test_reward_reads_the_decoded_trace_with_or_without_special_tokens(qwen_tokenizer):
    tok = qwen_tokenizer
    demo = demonstration_ids(tok, EXAMPLE, tok.decode(prompt_ids(tok, EXAMPLE)), max_len=64)
    for skip in (False, True):  # the local engine keeps special tokens, verl's reward loop drops them
        text = tok.decode(demo, skip_special_tokens=skip)
        assert luffy_reward(text, "7") == 1.0 and luffy_reward(text, "8") == 0.0
    unclosed = tok.decode(tok("Let me add. The answer is $\\boxed{7}$.", add_special_tokens=False)["input_ids"])
    assert luffy_reward(unclosed, "7") == 0.0


def test_local_engine_rollout_scores_demonstration_and_generation(qwen_model_dir, tmp_path):
    settings = LocalSettings(model=str(qwen_model_dir), train_files="", output_dir=tmp_path, prompts_per_step=1,
                             mini_batch_prompts=1, n=2, n_off_policy=1, advantage="grpo", use_std=False,
                             max_prompt_length=1024, max_response_length=40, temperature=1e-3, lr=0.0,
                             grad_clip=1.0, epochs=1, max_steps=None, save_every=0, device="cpu", seed=0,
                             loss=LossConfig())
    trainer = LocalTrainer(settings, examples=[EXAMPLE])
    batch = trainer.rollout([EXAMPLE])
    assert batch.is_off_policy.tolist() == [True, False]
    texts = trainer.response_texts(batch)
    assert texts[0] == DEMO.removeprefix("<think>\n") + "<|im_end|>"
    # The taught model closes its thought with the three-token </think> and boxes 42; gold is 7.
    assert texts[1] == "Let me think step by step.\n</think>\n\nThe answer is $\\boxed{42}$.<|im_end|>"
    assert batch.rewards.tolist() == [1.0, 0.0]
    assert trainer.model.config.vocab_size == 151936
