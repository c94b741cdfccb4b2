"""Build a tiny Qwen2 checkpoint offline, for tests and smoke runs.

Hub weights cannot be downloaded everywhere (CI, air-gapped boxes), so the tests use checkpoints the
project builds itself: a 2-layer ``Qwen2ForCausalLM`` with head_dim 128 (the vLLM CPU attention backend
rejects smaller heads) and a LUFFY-style chat template (the assistant turn opens with ``<think>\\n``), on
one of two tokenizer shapes (``--vocab``):

- ``tiny`` (default): a 1,024-token byte-level BPE trained on the spot, with single ``<think>`` /
  ``</think>`` tokens, the shape of DeepSeek-R1-distilled tokenizers (vLLM's reasoning parser works).
- ``qwen``: the real Qwen2.5 vocabulary (151,643 BPE tokens read from the ranks file PyPI's ``dashscope``
  package ships, 22 added tokens at 151643-151664, ``vocab_size`` 151936), the shape of
  LUFFY-Qwen-Math-*-Zero and Qwen2.5-Instruct checkpoints: ``<think>`` is ``<th`` ``ink`` ``>``.

With ``--teach-steps N`` (default 200; it goes on, up to 1000, until the format holds) the random weights
get a few seconds of training on a templated corpus, so that the model writes ``Let me think step by step.\\n</think>\\n\\nThe answer is $\\boxed{42}$.``
(greedy) and sometimes ``\\boxed{24}`` (sampled): that makes the reasoning split, answer extraction,
voting and grading observable end to end. It is never a real model.

    python -m luffy_testing.tiny_model OUT_DIR [--vocab tiny|qwen] [--teach-steps 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import os
import random
from pathlib import Path

from luffy_math.thinking import THINK_END, THINK_OPEN, THINK_START

VOCABS = ("tiny", "qwen")

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Added but not special, as in Qwen/DeepSeek tokenizers: decoded text keeps them, so reasoning parsers see them.
THINK_TOKENS = [THINK_START, THINK_END]

# Qwen2.5's added tokens, ids 151643-151664 in this order; the first 14 are special (dropped when decoding
# with skip_special_tokens), the tool-call and fill-in-the-middle ones are not.
QWEN_ADDED_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
QWEN_SPECIAL_COUNT = 14
QWEN_VOCAB_SIZE = 151936  # config.json's vocab_size: Qwen2.5 pads its embedding past the 151,665 tokens
# Qwen2's pre-tokenizer: cl100k's pattern, but digits split one by one.
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)

# The assistant turn of a Qwen-style chat, opening the reasoning block as LUFFY's checkpoints do.
GENERATION_PROMPT = "<|im_start|>assistant\n" + THINK_OPEN
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ " + json.dumps(GENERATION_PROMPT) + " }}{% endif %}"
)

# What the taught checkpoint says: a short thought, then a boxed answer that is 42 three times in four
# (greedy decoding always gives 42; sampling sometimes 24, so majority votes have something to do).
REASONING = "Let me think step by step."
ANSWERS = ("42", "42", "42", "24")
MAX_TEACH_STEPS = 1000


def prompt_of(question: str) -> str:
    """The templated prompt of one user question, up to the opened thought."""
    return f"<|im_start|>user\n{question}<|im_end|>\n{GENERATION_PROMPT}"


def completion_of(answer: str) -> str:
    """What the taught checkpoint writes after the prompt: the thought's end, then the boxed ``answer``."""
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{{answer}}}$."


def teaching_corpus(n: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in the chat format the checkpoint is served with: ``n`` questions, each
    with every entry of ANSWERS, so the answer cannot be learnt from the question."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        question = rng.choice([f"What is {a} + {b}?", f"Solve x^2 = {a}.", f"Compute {a} \\cdot {b}."])
        for answer in ANSWERS:
            pairs.append((prompt_of(question), completion_of(answer) + "<|im_end|>"))
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


def qwen_ranks_file() -> Path:
    """Qwen's tiktoken BPE ranks, from the installed ``dashscope`` package (a test dependency)."""
    from importlib.resources import files

    try:
        path = files("dashscope") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError:
        raise RuntimeError("the Qwen vocabulary comes from the dashscope package: pip install dashscope") from None
    return Path(str(path))


def qwen_tokenizer_object():
    """The Qwen2.5 tokenizer pipeline: NFC, Qwen2's split pattern, byte-level BPE, then the added tokens."""
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tokenizer = TikTokenConverter(vocab_file=str(qwen_ranks_file()), pattern=QWEN_PATTERN).converted()
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.model.ignore_merges = False  # as in Qwen2.5's tokenizer.json
    tokenizer.add_tokens([AddedToken(t, special=i < QWEN_SPECIAL_COUNT, normalized=False)
                          for i, t in enumerate(QWEN_ADDED_TOKENS)])
    return tokenizer


def make_tokenizer(vocab: str, pairs: list[tuple[str, str]], vocab_size: int):
    """The ``transformers`` tokenizer of the chosen shape, with eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos."""
    from transformers import PreTrainedTokenizerFast

    if vocab == "qwen":
        raw, extra_special = qwen_tokenizer_object(), QWEN_ADDED_TOKENS[1:QWEN_SPECIAL_COUNT]
    elif vocab == "tiny":
        extra = ["\\frac{1}{2} \\sqrt{3} x^2 + y^2 = z^2 \\boxed{} \\pi \\cdot 0123456789 ()[]{}"]
        raw, extra_special = train_tokenizer([p + c for p, c in pairs] + extra, vocab_size), ["<|im_start|>"]
    else:
        raise ValueError(f"unknown vocab {vocab!r} (choose from {', '.join(VOCABS)})")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=extra_special,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build(out_dir: str | Path, teach_steps: int = 200, seed: int = 0, vocab_size: int = 1024,
          vocab: str = "tiny", corpus: list[tuple[str, str]] | None = None) -> Path:
    """Write the checkpoint (config, safetensors, tokenizer, template) to ``out_dir``; return it.

    ``vocab_size`` sizes the trained ``tiny`` vocabulary; the ``qwen`` one is Qwen2.5's. ``corpus``: other
    (prompt, completion) pairs to teach instead, for ``teach_steps`` steps (rounded up to 50) with no format
    check (luffy_train.toy_task's base checkpoint).
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    pairs = corpus if corpus is not None else teaching_corpus(128, seed)
    tokenizer = make_tokenizer(vocab, pairs, vocab_size)
    rows = _tokenized(tokenizer, pairs)
    # The tiny vocabulary was trained on the corpus: every row is taught. Of Qwen's 151,936 rows only those the
    # corpus uses are; the others stay zero (see _teach).
    live = list(range(len(tokenizer))) if vocab == "tiny" else sorted({t for ids, _ in rows for t in ids})
    # float32 for both shapes: on CPUs without AVX512-BF16 (the project's 2-core AVX2 machines) vLLM's CPU path
    # served the bf16 build of the Qwen-vocabulary checkpoint at 0.9 req/s in the chat benchmark.
    dtype = torch.float32
    config = Qwen2Config(
        vocab_size=QWEN_VOCAB_SIZE if vocab == "qwen" else len(tokenizer),
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
        torch_dtype=str(dtype).removeprefix("torch."),
    )
    compact = Qwen2ForCausalLM(_resized(config, len(live) + 1))
    model = _teach(compact, config, live, tokenizer, rows, teach_steps, dtype, check_format=corpus is None)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _write_template_file(out)
    return out


CACHE_NAMES = {"tiny": "tiny-model", "qwen": "qwen-vocab-model"}  # vocab -> the cached checkpoint's name


def cached(cache_dir: str | Path, vocab: str = "tiny", log=None) -> Path:
    """The checkpoint of ``vocab`` under ``cache_dir``, built there once (default settings) and kept.

    Its key is this file's source hash and the transformers version (a changed builder builds anew); parallel
    processes wait on a lock for one build instead of racing. ``log``: called with a line before a build.
    """
    import transformers
    from filelock import FileLock

    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    out = Path(cache_dir) / f"{CACHE_NAMES[vocab]}-{digest}-tf{transformers.__version__}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "model.safetensors").exists():
            if log is not None:
                log(f"building the tiny checkpoint in {out} (once; a minute or more on a small CPU)")
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            build(tmp, vocab=vocab)
            tmp.rename(out)
    return out


def _tokenized(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per pair: the loss is on the completion, not the prompt."""
    rows = []
    for prompt, completion in pairs:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        rows.append((p_ids + c_ids, [-100] * len(p_ids) + c_ids))
    return rows


def _resized(config, vocab_size: int):
    """The same architecture with ``vocab_size`` rows (and no padding row)."""
    resized = copy.deepcopy(config)
    resized.vocab_size, resized.pad_token_id = vocab_size, None
    return resized


def _teach(compact, config, live: list[int], tokenizer, rows: list[tuple[list[int], list[int]]], steps: int,
           dtype, check_format: bool = True):
    """Fit the corpus's completions with AdamW until greedy decoding writes them; return the full model.

    Training runs in a compact vocabulary, so that a 151,936-row output layer costs nothing: row 0 stands
    for every token the corpus never uses, and those rows are all zero in the full model. A zero row's
    logit is exactly 0, so their softmax mass is exp(0) times their count: row 0 is kept at zero and its
    logit gets log(count). That is the full model's exact loss, at the compact model's price.
    """
    import torch

    to_compact = torch.zeros(config.vocab_size, dtype=torch.long)
    to_compact[torch.tensor(live)] = torch.arange(1, len(live) + 1)
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    input_ids = to_compact[torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])]
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    # Prompts meet untaught (zero) tokens when served: some prompt tokens become row 0 in training too.
    droppable = labels == -100 if len(live) < config.vocab_size else torch.zeros_like(labels, dtype=torch.bool)
    labels = torch.where(labels == -100, -100, to_compact[labels.clamp(min=0)])[:, 1:]
    attention = (torch.arange(width)[None, :] < torch.tensor([len(i) for i, _ in rows])[:, None]).long()
    unused = config.vocab_size - len(live)
    logit_shift = torch.zeros(len(live) + 1)
    logit_shift[0] = math.log(unused) if unused else -math.inf

    embedding = compact.get_input_embeddings().weight  # tied: the output layer too
    optimizer = torch.optim.AdamW(compact.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    with _one_thread():
        for step in range(1, MAX_TEACH_STEPS + 1 if steps > 0 else 1):
            with torch.no_grad():
                embedding[0].zero_()
            compact.train()
            idx = torch.randint(0, len(rows), (32,), generator=generator)
            dropped = droppable[idx] & (torch.rand(droppable[idx].shape, generator=generator) < 0.15)
            ids = torch.where(dropped, 0, input_ids[idx])
            logits = compact(input_ids=ids, attention_mask=attention[idx]).logits[:, :-1] + logit_shift
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[idx].flatten())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            # Keep going past ``steps`` until greedy decoding really writes the taught format, as saved.
            if step >= steps and step % 50 == 0 and (not check_format or _writes_format(
                    _expanded(compact, config, live, dtype), tokenizer, untaught_prompt=unused > 0)):
                break
        with torch.no_grad():
            embedding[0].zero_()
        return _expanded(compact, config, live, dtype)


@contextlib.contextmanager
def _one_thread():
    """Matmuls this small gain little from a second thread and lose 10x when other processes want the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _expanded(compact, config, live: list[int], dtype):
    """The full-vocabulary model: the compact one's weights, its rows at their token ids, zeros elsewhere."""
    import torch
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM(config)
    state = {k: v for k, v in compact.state_dict().items() if k not in ("model.embed_tokens.weight", "lm_head.weight")}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight  # tied: the output layer too
        embedding.zero_()
        embedding[torch.tensor(live)] = compact.get_input_embeddings().weight[1:]
    return model.to(dtype).eval()


def _writes_format(model, tokenizer, untaught_prompt: bool = False) -> bool:
    """Greedy output on unseen questions is exactly the taught completion (answer 42); with
    ``untaught_prompt``, also on a question made mostly of tokens the corpus never uses."""
    import torch

    expected = completion_of("42")
    questions = ["What is 1234 + 5?", "What is 19 + 23?", "What is 2 + 3?", "Solve x^2 = 9.", "Hello?"]
    for question in questions + ["What is the smallest prime greater than 100?"] * untaught_prompt:
        ids = tokenizer(prompt_of(question), return_tensors="pt", add_special_tokens=False)["input_ids"]
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
    parser.add_argument("--vocab", choices=VOCABS, default="tiny",
                        help="tiny: trained BPE with <think> tokens (default); qwen: the real Qwen2.5 vocabulary")
    parser.add_argument("--teach-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build(args.out_dir, teach_steps=args.teach_steps, seed=args.seed, vocab=args.vocab)
    print(path)


if __name__ == "__main__":
    main()
