"""The names of vLLM's serving flags, checked in, so that luffy-serve can refuse a mistyped flag at once.

vLLM's flags are known only to vLLM's parser, and building it imports vLLM (seconds to tens of seconds).
``vllm_flags.txt`` holds their option strings for the installed vLLM; luffy-serve checks every flag it is
given against it (and its own) before vLLM is imported. ``tests/serve/test_cli_fast.py`` compares the file
with the installed vLLM's parser, so it fails when vLLM changes; this module rewrites it:

    .venv/bin/python -m luffy_serve.vllm_flags
"""

from __future__ import annotations

import functools
from pathlib import Path

FLAGS_FILE = Path(__file__).with_name("vllm_flags.txt")
HEADER = "# vLLM's serving flags (python -m luffy_serve.vllm_flags rewrites this file from the installed vLLM)"


def installed_flags() -> list[str]:
    """Every option string of the installed vLLM's ``vllm serve`` parser (imports vLLM), sorted."""
    from .vllm_compat import FlexibleArgumentParser, make_arg_parser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    return sorted({option for action in parser._actions for option in action.option_strings})


@functools.cache
def known_flags() -> frozenset[str]:
    """The option strings in ``vllm_flags.txt``."""
    lines = FLAGS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def write(flags: list[str], path: Path = FLAGS_FILE) -> None:
    path.write_text("\n".join([HEADER, *flags]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    flags = installed_flags()
    write(flags)
    print(f"wrote {len(flags)} flags to {FLAGS_FILE}")
