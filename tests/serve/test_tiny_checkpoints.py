"""The two tiny checkpoint shapes: the real Qwen2.5 vocabulary (as LUFFY-Qwen-Math-*-Zero) and the trained
vocabulary with single think tokens (as DeepSeek-R1-distilled tokenizers)."""

from __future__ import annotations

import json

import pytest

from luffy_testing.tiny_model import QWEN_ADDED_TOKENS

FORMAT = "Let me think step by step.\n</think>\n\nThe answer is $\\boxed{42}$."
# Qwen2.5's added tokens: the first 14 are special, the tool-call and fill-in-the-middle ones are not.
QWEN_SPECIAL = {151643 + i for i in range(14)}


def test_qwen_vocab_checkpoint_has_the_qwen25_tokenizer_shape(qwen_model_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen_model_dir)
    assert json.loads((qwen_model_dir / "config.json").read_text())["vocab_size"] == 151936
    assert len(tok) == 151665
    assert tok("Hello", add_special_tokens=False)["input_ids"] == [9707]
    assert tok(" world", add_special_tokens=False)["input_ids"] == [1879]
    assert tok.convert_ids_to_tokens(tok("<think>", add_special_tokens=False)["input_ids"]) == ["<th", "ink", ">"]
    assert tok("</think>", add_special_tokens=False)["input_ids"] == [522, 26865, 29]
    assert "<think>" not in tok.get_vocab() and "</think>" not in tok.get_vocab()
    decoder = tok.added_tokens_decoder
    assert [decoder[151643 + i].content for i in range(22)] == QWEN_ADDED_TOKENS == [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
        "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
        "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
        "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
    assert {i for i in range(151643, 151665) if decoder[i].special} == QWEN_SPECIAL
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token, tok.pad_token_id, tok.bos_token) == (
        "<|im_end|>", 151645, "<|endoftext|>", 151643, None)
    # Byte-level: any text round-trips, and the loaded tokenizer encodes as the saved tokenizer.json does.
    text = "Hello world! x² + 中文 🙂 12345\n\n<think>\nok</think>\r\n  tabs\t"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert ids == Tokenizer.from_file(str(qwen_model_dir / "tokenizer.json")).encode(text).ids
    assert tok.convert_ids_to_tokens(tok("12345", add_special_tokens=False)["input_ids"]) == list("12345")
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"


def test_think_token_checkpoint_keeps_single_think_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tok("<think></think>", add_special_tokens=False)["input_ids"]) == 2
    assert {"<think>", "</think>"} <= set(tok.get_vocab())


# The Qwen-vocabulary question is mostly tokens the corpus never taught (zero rows in that checkpoint).
@pytest.mark.parametrize(("fixture", "question"), [("qwen_model_dir", "What is the smallest prime greater than 100?"),
                                                   ("tiny_model_dir", "What is 3 + 4?")])
def test_checkpoint_loads_in_transformers_and_writes_the_format(fixture, question, request):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.head_dim == 128 and model.config.tie_word_embeddings
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    n = ids["input_ids"].shape[1]
    greedy = model.generate(**ids, max_new_tokens=40, do_sample=False)
    assert tokenizer.decode(greedy[0, n:], skip_special_tokens=True) == FORMAT
    assert greedy[0, -1] == tokenizer.eos_token_id
    torch.manual_seed(0)
    sampled = model.generate(**ids, max_new_tokens=40, do_sample=True, temperature=1.0, num_return_sequences=32)
    texts = [tokenizer.decode(row[n:], skip_special_tokens=True) for row in sampled]
    assert sum("\\boxed{24}" in t for t in texts) >= 1 and sum("\\boxed{42}" in t for t in texts) >= 16
