"""Which reasoning split a checkpoint gets: vLLM's parser when the tokenizer can carry it, else the text.

vLLM's ``deepseek_r1`` parser finds the thought by the ids of single ``<think>``/``</think>`` tokens and
refuses to start without them. DeepSeek-R1-distilled tokenizers have them; Qwen2.5's (the base of LUFFY's
checkpoints) write the tags as several ordinary tokens, so there the math layer splits the decoded text
(luffy_math.thinking), with the same response fields. Decided from the tokenizer alone, before any weights
load, so that a parser that cannot work is one line and exit 2, not a crash after minutes of loading.
"""

from __future__ import annotations

import argparse

from luffy_math.thinking import THINK_END, THINK_START
from luffy_util.errors import first_line

AUTO = "auto"  # luffy-serve's default for --reasoning-parser
PARSER = "deepseek_r1"


class ReasoningSetupError(Exception):
    pass


def load_tokenizer(args: argparse.Namespace):
    """The tokenizer vLLM will load for these serve arguments."""
    from vllm.tokenizers import get_tokenizer

    return get_tokenizer(args.tokenizer or args.model, tokenizer_mode=args.tokenizer_mode,
                         trust_remote_code=args.trust_remote_code,
                         revision=args.tokenizer_revision or args.revision, download_dir=args.download_dir)


def has_think_tokens(tokenizer) -> bool:
    vocab = tokenizer.get_vocab()
    return THINK_START in vocab and THINK_END in vocab


def choose_split(args: argparse.Namespace, tokenizer) -> bool:
    """Set ``args.reasoning_parser`` for vLLM; return True when the math layer must split the text.

    ``auto``: ``deepseek_r1`` if the tokenizer has single think tokens, else the text split. ``""``: no split
    at all (the raw text in ``content``). Any other name is the user's: it must work with this tokenizer.
    """
    from vllm.reasoning import ReasoningParserManager

    requested = args.reasoning_parser
    if requested == AUTO:
        args.reasoning_parser = PARSER if has_think_tokens(tokenizer) else ""
        return not args.reasoning_parser
    if requested:
        try:
            ReasoningParserManager.get_reasoning_parser(requested)(tokenizer)
        except Exception as exc:  # unknown name, or the parser cannot find its tokens
            raise ReasoningSetupError(
                f"--reasoning-parser {requested} cannot work with the tokenizer of '{args.model}': {first_line(exc)} "
                f"(leave the flag out to let luffy-serve pick a split that fits this tokenizer)") from None
    return False
