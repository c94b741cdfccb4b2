"""Prompt templates: the checkpoint's own chat template (LUFFY's default) or LUFFY's fixed alternatives.

"own" needs the checkpoint's tokenizer, so the engines the harness owns (in-process, Ray replicas) render it;
an OpenAI endpoint renders it server-side from the chat messages. The others are plain strings sent as completions.
"""

from __future__ import annotations

from typing import Any

TEMPLATES = ("own", "qwen", "prime", "none")
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def render_fixed(template: str, question: str) -> str:
    """The prompt text of the fixed templates (the prompt wording of LUFFY's eval script)."""
    if template == "qwen":
        return (f"<|im_start|>system\n{BOXED_INSTRUCTION}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
                "<|im_start|>assistant\n")
    if template == "prime":
        question = question + "\n\nPresent the answer in LaTex format: \\boxed{Your answer}"
        return ("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
                "The assistant first thinks about the reasoning process in the mind and then provides the user with "
                "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
                "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
                f"</answer>. User: {question}. Assistant:")
    if template == "none":
        return f"{BOXED_INSTRUCTION}\n{question}"
    raise ValueError(f"template {template!r} is not a fixed template")


def render_own(tokenizer: Any, question: str) -> str:
    """The checkpoint's chat template on the user message alone: LUFFY drops the system message."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


def render_prompt(tokenizer: Any, question: str, template: str) -> tuple[str, list[int]]:
    """(prompt text, token ids) for an engine the harness drives; the own template's text already holds its
    special tokens, so they are not added again."""
    if template == "own":
        text = render_own(tokenizer, question)
        return text, tokenizer.encode(text, add_special_tokens=False)
    text = render_fixed(template, question)
    return text, tokenizer.encode(text)
