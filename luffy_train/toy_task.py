"""A toy task for showing that training learns, in LUFFY's data format: how many digits a number has.

The answer is exact (Math-Verify grades the boxed number) and every row carries a demonstration in LUFFY's
shape: a short worked thought, ``</think>``, then the boxed answer. Train and held-out splits share no number.

Every number has ``--digits`` digits (4), so the rule is one answer; that keeps it learnable in the few
dozen steps a 2-core CPU affords (rules that depend on the digits themselves, such as adding 1 to each, took
the tiny model far more). The base checkpoint (``base``) is the project's tiny Qwen-vocabulary model taught
the task's *format* but not its rule: it answers every question in the demonstrations' words with four random
digits (each 2 to 9), so its answers are well-formed and never right, and a demonstration is unlikely only
where the rule decides (its digit about 1/8, the full stop after one digit far less): the regime LUFFY's
policy shaping is made for.

    python -m luffy_train.toy_task data OUT_DIR [--train 512] [--heldout 64] [--digits 4] [--seed 0]
    python -m luffy_train.toy_task base OUT_DIR [--steps 300] [--seed 0]

``data`` writes ``OUT_DIR/train.parquet`` and ``OUT_DIR/heldout.parquet`` in the training format (``python -m
luffy_train data`` accepts them as they are) and ``OUT_DIR/heldout.jsonl`` (``problem``/``answer``/
``benchmark``/``id``) for ``python -m benchmarks run --data``. ``base`` writes the base checkpoint (about a
minute on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

import pandas as pd

BENCHMARK = "toy-digit-count"
DIGITS = "123456789"
# Answers the taught tiny checkpoint gives (tiny_model.ANSWERS): a toy problem never has one as its gold.
TAUGHT_ANSWERS = frozenset({"42", "24"})
THOUGHT = "Let me think step by step. Counting the digits gives "


def question(number: str) -> str:
    return f"How many digits does {number} have?"


def answer(number: str) -> str:
    return str(len(number))


def completion(digits: str) -> str:
    """The trace after the template's ``<think>\\n`` (which the prompt already holds): the worked thought, then the
    boxed answer."""
    return f"{THOUGHT}{digits}.\n</think>\n\nThe answer is $\\boxed{{{digits}}}$."


def demonstration(number: str) -> str:
    """The demonstration of ``number``: the right digits in the thought and the box."""
    return completion(answer(number))


def numbers(count: int, digits: int, rng: random.Random, exclude: set[str] = frozenset()) -> list[str]:
    """``count`` distinct numbers of ``digits`` digits from ``DIGITS``, none of them in ``exclude`` and none
    whose answer the taught checkpoint gives."""
    space = len(DIGITS) ** digits
    if count > space - len(exclude):
        raise ValueError(f"only {space} numbers have {digits} digits from {DIGITS}; asked for {count} more")
    out: list[str] = []
    seen = set(exclude)
    while len(out) < count:
        number = "".join(rng.choice(DIGITS) for _ in range(digits))
        if number in seen or answer(number) in TAUGHT_ANSWERS:
            continue
        seen.add(number)
        out.append(number)
    return out


def training_rows(batch: list[str], split: str) -> list[dict]:
    """LUFFY's row format (luffy_train.data): user prompt, demonstration as ``target``, gold answer."""
    return [{
        "data_source": "",
        "prompt": [{"role": "user", "content": question(n)}],
        "target": [{"role": "assistant", "content": demonstration(n)}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer(n)},
        "extra_info": {"split": split, "index": i},
    } for i, n in enumerate(batch)]


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write(out_dir: str | Path, train: int = 512, heldout: int = 64, digits: int = 4, seed: int = 0) -> dict[str, Path]:
    """Write the train and held-out splits to ``out_dir``; returns the paths by name."""
    rng = random.Random(seed)
    train_numbers = numbers(train, digits, rng)
    heldout_numbers = numbers(heldout, digits, rng, exclude=set(train_numbers))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.parquet", "heldout": out / "heldout.parquet", "heldout_jsonl": out / "heldout.jsonl"}
    for name, batch in (("train", train_numbers), ("heldout", heldout_numbers)):
        frame = pd.DataFrame(training_rows(batch, name))
        _write_atomic(paths[name], lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
    lines = "".join(json.dumps({"problem": question(n), "answer": answer(n), "benchmark": BENCHMARK, "id": str(i)})
                    + "\n" for i, n in enumerate(heldout_numbers))
    _write_atomic(paths["heldout_jsonl"], lambda tmp: tmp.write_text(lines))
    return paths


def base_corpus(questions: int, per_question: int, digits: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in the served chat format: fresh questions, each with ``per_question``
    completions of random digits, so that the digits cannot be learnt from the question."""
    rng = random.Random(seed + 1)
    pairs = []
    for number in numbers(questions, digits, rng):
        prompt = f"<|im_start|>user\n{question(number)}<|im_end|>\n<|im_start|>assistant\n<think>\n"
        for _ in range(per_question):
            guess = "".join(rng.choice("23456789") for _ in range(digits))
            pairs.append((prompt, completion(guess) + "<|im_end|>"))
    return pairs


def build_base(out_dir: str | Path, steps: int = 300, digits: int = 4, seed: int = 0) -> Path:
    """The base checkpoint: the tiny Qwen-vocabulary model taught ``base_corpus`` (luffy_testing.tiny_model)."""
    from luffy_testing import tiny_model

    return tiny_model.build(out_dir, teach_steps=steps, seed=seed, vocab="qwen",
                            corpus=base_corpus(256, 4, digits, seed))


def cached_base(cache_dir: str | Path) -> Path:
    """The default base checkpoint under ``cache_dir``, built there once and kept (keyed by this file's and the
    builder's sources and the transformers version; parallel processes wait on a lock for one build)."""
    import hashlib

    import transformers
    from filelock import FileLock

    from luffy_testing import tiny_model

    sources = Path(__file__).read_bytes() + Path(tiny_model.__file__).read_bytes()
    digest = hashlib.sha256(sources).hexdigest()[:12]
    out = Path(cache_dir) / f"toy-base-{digest}-tf{transformers.__version__}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "model.safetensors").exists():
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            build_base(tmp)
            tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    from luffy_util import arg_types

    parser = argparse.ArgumentParser(prog="python -m luffy_train.toy_task", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the train and held-out splits")
    data.add_argument("out_dir", type=arg_types.output_dir)
    data.add_argument("--train", type=arg_types.positive_int, default=512, help="training problems")
    data.add_argument("--heldout", type=arg_types.positive_int, default=64, help="held-out problems")
    data.add_argument("--digits", type=arg_types.positive_int, default=4, help="digits per number")
    data.add_argument("--seed", type=arg_types.seed, default=0)
    base = sub.add_parser("base", help="write the base checkpoint (the format without the rule)")
    base.add_argument("out_dir", type=arg_types.output_dir)
    base.add_argument("--steps", type=arg_types.positive_int, default=300, help="teaching steps")
    base.add_argument("--digits", type=arg_types.positive_int, default=4, help="digits per number")
    base.add_argument("--seed", type=arg_types.seed, default=0)
    args = parser.parse_args(argv)
    if args.command == "base":
        print(build_base(args.out_dir, args.steps, args.digits, args.seed))
        return 0
    try:
        paths = write(args.out_dir, args.train, args.heldout, args.digits, args.seed)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
