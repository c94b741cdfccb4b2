"""Build a tiny Qwen2 checkpoint offline, for tests and smoke runs.

Hub weights cannot be downloaded everywhere (CI, air-gapped boxes), so the tests use a checkpoint the
project builds itself: a byte-level BPE tokenizer trained on the spot, a LUFFY-style chat template
(the assistant turn opens with ``<think>\\n``), and a 2-layer ``Qwen2ForCausalLM`` with head_dim 128
(the vLLM CPU attention backend rejects smaller heads).

With ``--teach-steps N`` (default 200; it goes on, up to 1000, until the format holds) the random weights
get a few seconds of training on a templated corpus, so that the model writes ``Let me think step by step.\\n</think>\\n\\nThe answer is $\\boxed{42}$.``
(greedy) and sometimes ``\\boxed{24}`` (sampled): that makes the reasoning split, answer extraction,
voting and grading observable end to end. It is never a real model.

    python -m luffy_serve.tiny_model OUT_DIR [--teach-steps 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Added but not special, as in Qwen/DeepSeek tokenizers: decoded text keeps them, so reasoning parsers see them.
THINK_TOKENS = ["<think>", "</think>"]

# A Qwen-style template whose generation prompt opens the reasoning block, as LUFFY's checkpoints do.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)


# What the taught checkpoint says: a short thought, then a boxed answer that is 42 three times in four
# (greedy decoding always gives 42; sampling sometimes 24, so majority votes have something to do).
REASONING = "Let me think step by step."
ANSWERS = ("42", "42", "42", "24")
MAX_TEACH_STEPS = 1000


def teaching_corpus(n: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in the chat format the checkpoint is served with."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        question = rng.choice([f"What is {a} + {b}?", f"Solve x^2 = {a}.", f"Compute {a} \\cdot {b}."])
        prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n<think>\n"
        completion = f"{REASONING}\n</think>\n\nThe answer is $\\boxed{{{ANSWERS[i % 4]}}}$.<|im_end|>"
        pairs.append((prompt, completion))
    return pairs


def train_tokenizer(corpus: list[str], vocab_size: int):
    """A byte-level BPE tokenizer: any text encodes, so any user prompt is servable."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    return tokenizer


def build(out_dir: str | Path, teach_steps: int = 200, seed: int = 0, vocab_size: int = 1024) -> Path:
    """Write the checkpoint (config, safetensors, tokenizer, template) to ``out_dir``; return it."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    pairs = teaching_corpus(512, seed)
    extra = ["\\frac{1}{2} \\sqrt{3} x^2 + y^2 = z^2 \\boxed{} \\pi \\cdot 0123456789 ()[]{}"]
    raw = train_tokenizer([p + c for p, c in pairs] + extra, vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=128,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(config)
    if teach_steps > 0:
        _teach(model, tokenizer, pairs, teach_steps)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _write_template_file(out)
    return out


def _teach(model, tokenizer, pairs: list[tuple[str, str]], steps: int) -> None:
    """Fit the completions (not the prompts) of the corpus for a few hundred AdamW steps."""
    import torch

    rows = []
    for prompt, completion in pairs:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        rows.append((p_ids + c_ids, [-100] * len(p_ids) + c_ids))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    attention = (torch.arange(width)[None, :] < torch.tensor([len(i) for i, _ in rows])[:, None]).long()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, MAX_TEACH_STEPS + 1):
        model.train()
        idx = torch.randint(0, len(rows), (32,), generator=generator)
        loss = model(input_ids=input_ids[idx], attention_mask=attention[idx], labels=labels[idx]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        # Keep going past ``steps`` until greedy decoding really writes the taught format.
        if step >= steps and step % 50 == 0 and _writes_format(model, tokenizer):
            break
    model.eval()


def _writes_format(model, tokenizer) -> bool:
    """Greedy output on unseen questions is exactly the taught completion (answer 42)."""
    import torch

    model.eval()
    expected = f"{REASONING}\n</think>\n\nThe answer is $\\boxed{{42}}$."
    for question in ("What is 1234 + 5?", "What is 19 + 23?", "What is 2 + 3?", "Solve x^2 = 9.", "Hello?"):
        prompt = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n<think>\n"
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=model.config.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
        if tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True) != expected:
            return False
    return True


def _write_template_file(out: Path) -> None:
    """Keep the template in tokenizer_config.json too, where older loaders look for it."""
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("chat_template", CHAT_TEMPLATE)
    cfg_path.write_text(json.dumps(cfg, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--teach-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build(args.out_dir, teach_steps=args.teach_steps, seed=args.seed)
    print(path)


if __name__ == "__main__":
    main()
