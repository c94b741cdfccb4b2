"""luffy-serve's command line before vLLM is imported: its own flags, the names of vLLM's, ``--help``.

Building vLLM's parser imports vLLM (seconds, tens of seconds on a busy machine), so luffy-serve first parses
what it can without it: its own flags and the vLLM flags it needs before the engine (where to listen, how
the HTTP server runs, the model), each value checked; and every other flag's name, against the checked-in
list of vLLM's (``vllm_flags.py``). A mistake is one line and exit code 2 within a second or two; vLLM's own
parser checks vLLM's values later, while the port already answers 503.
"""

from __future__ import annotations

import argparse
import difflib
import ssl

from luffy_util import arg_types

from . import quiet_log
from .limits import Limits
from .registry import CHECKPOINTS, DEFAULT_MODEL

PROG = "luffy-serve"


class Refused(Exception):
    """A start-up refusal: its message is the one line after ``luffy-serve: error:``; exit code 2."""


# The flags of what one client may ask (luffy_serve.limits.Limits, whose field of the same name is the default).
LIMIT_FLAGS = [
    ("--grade-deadline", arg_types.positive_float,
     "Seconds one /v1/grade request may take; items not graded by then come back timed_out, and their work is "
     "dropped"),
    ("--grade-max-items", arg_types.positive_int, "Most items in one /v1/grade request (400 beyond)"),
    ("--grade-max-chars", arg_types.positive_int,
     "Most characters in one /v1/grade request, items and golds together (413 beyond)"),
    ("--grade-capacity", arg_types.positive_int,
     "Most /v1/grade items in flight, all requests together; a request beyond gets 429 with Retry-After"),
    ("--max-request-bytes", arg_types.positive_int, "Largest request body, declared or chunked (413 beyond)"),
]

LOG_LEVEL_HELP = ("What the log shows (default %(default)s): quiet = luffy's own lines and the warnings that "
                  "matter; warning = every warning of vLLM and the libraries under it; info = vLLM's INFO lines "
                  "too (as vllm serve); debug = everything.")
HELP_VLLM_HELP = "List vLLM's engine and server flags (imports vLLM); --help-vllm=WORD: those matching WORD."


def add_luffy_flags(group: argparse._ActionsContainer) -> None:
    """luffy-serve's own flags (both parsers: this one and vLLM's with them added)."""
    from luffy_math.workers import workers_beside_engine

    group.add_argument("--demo", action="store_true", help="Mount the Gradio demo at /demo.")
    group.add_argument("--grading-workers", type=arg_types.positive_int, default=workers_beside_engine(),
                       help="Worker processes for answer votes and grading.")
    group.add_argument("--grading-timeout", type=arg_types.positive_float, default=10.0,
                       help="Seconds one grade or vote may take before its worker is killed.")
    group.add_argument("--grade-workers", type=arg_types.positive_int, default=1,
                       help="Worker processes for POST /v1/grade: a pool of its own at a lower CPU priority, so "
                            "that the math fields of chat and completions never wait behind it.")
    limits = Limits()
    for flag, kind, help_text in LIMIT_FLAGS:  # each defaults to the Limits field of its name
        group.add_argument(flag, type=kind, default=getattr(limits, flag[2:].replace("-", "_")),
                           help=help_text + " (default %(default)s).")
    group.add_argument("--public-metrics", action="store_true",
                       help="Serve /metrics without the API key (by default it needs the key, as every route "
                            "but /health and /ping).")
    group.add_argument("--help-vllm", nargs="?", const="all", metavar="WORD", help=HELP_VLLM_HELP)


# vLLM's flags that luffy-serve reads before vLLM is imported, as vLLM declares them (names, defaults, choices:
# tests/serve/test_cli_fast.py compares them with the installed vLLM's parser), less the help.
def add_early_vllm_flags(group: argparse._ActionsContainer) -> None:
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help="A registry name (" + ", ".join(CHECKPOINTS) + "), a hub id or a checkpoint "
                            "directory; also the first positional argument (default %(default)s).")
    group.add_argument("--host", default=None, help="Address to listen on (default: every address).")
    group.add_argument("--port", type=arg_types.port, default=8000, help="Port to listen on (default %(default)s).")
    group.add_argument("--uvicorn-log-level", default=None,
                       choices=["critical", "debug", "error", "info", "trace", "warning"],
                       help="Level of uvicorn's own log (default: from --log-level).")
    group.add_argument("--disable-uvicorn-access-log", action=argparse.BooleanOptionalAction, default=False,
                       help="No access log.")
    group.add_argument("--ssl-keyfile", default=None, help="TLS key file.")
    group.add_argument("--ssl-certfile", default=None, help="TLS certificate file.")
    group.add_argument("--ssl-ca-certs", default=None, help="CA certificates file.")
    group.add_argument("--ssl-cert-reqs", type=int, default=int(ssl.CERT_NONE),
                       help="Whether a client certificate is required (the ssl module's values).")
    group.add_argument("--ssl-ciphers", default=None, help="TLS ciphers.")
    group.add_argument("--h11-max-incomplete-event-size", type=int, default=4194304, help=argparse.SUPPRESS)
    group.add_argument("--h11-max-header-count", type=int, default=256, help=argparse.SUPPRESS)
    group.add_argument("--log-level", type=quiet_log.level_from, default=quiet_log.DEFAULT, help=LOG_LEVEL_HELP)


EARLY_VLLM_DESTS = ("model", "host", "port", "uvicorn_log_level", "disable_uvicorn_access_log", "ssl_keyfile",
                    "ssl_certfile", "ssl_ca_certs", "ssl_cert_reqs", "ssl_ciphers", "h11_max_incomplete_event_size",
                    "h11_max_header_count")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage
        raise Refused(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve a LUFFY checkpoint behind a math-aware OpenAI-compatible API (vLLM's engine). The port "
                    "answers at once: 503 with Retry-After while the model loads, then the API.",
        epilog="Every flag of `vllm serve` works too (--max-model-len, --dtype, --tensor-parallel-size, "
               "--api-key, --served-model-name, --reasoning-parser ...): `luffy-serve --help-vllm` lists them, "
               "`luffy-serve --help-vllm=WORD` those matching WORD.",
    )
    add_early_vllm_flags(parser.add_argument_group("server (vLLM's flags that luffy-serve reads first)"))
    add_luffy_flags(parser.add_argument_group("luffy"))
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The early arguments (``model``, ``host``, ``port`` ..., luffy's); raises :class:`Refused` for a flag
    neither luffy's nor vLLM's and for a bad value of a flag declared here. ``--help`` prints and exits 0."""
    parser = build_parser()
    tokens = [_normalized(token) for token in argv]
    check_names(tokens, _option_strings(parser))
    model_tag = tokens[0] if tokens and not tokens[0].startswith("-") else None
    args, _ = parser.parse_known_args(tokens[1:] if model_tag else tokens)
    if model_tag:
        args.model = model_tag
    args.config_file = any(t == "--config" or t.startswith("--config=") for t in tokens)
    return args


def check_names(tokens: list[str], own: set[str]) -> None:
    """Refuse the first flag that is neither ``own`` nor vLLM's (nor a unique prefix of one, as argparse
    allows), with the closest known flag."""
    from .vllm_flags import known_flags

    known = own | known_flags()
    long_names = sorted(k for k in known if k.startswith("--"))
    short_names = [k for k in known if not k.startswith("--")]
    for token in tokens:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or _is_number(token):
            continue
        name = token.partition("=")[0]
        if token.startswith("--"):
            base = name.split(".")[0].rstrip("+")  # vLLM's JSON flags: --compilation-config.mode 3
            if base in known or len([k for k in long_names if k.startswith(base)]) == 1:
                continue
        elif name in known or token.startswith("-O") or any(token.startswith(s) for s in short_names):
            continue
        else:
            base = name
        near = difflib.get_close_matches(base, long_names, n=1, cutoff=0.6)
        raise Refused(f"unrecognized argument {base} " + (f"(did you mean {near[0]}?)" if near else
                      f"({PROG} --help lists luffy's flags, {PROG} --help-vllm vLLM's)"))


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _normalized(token: str) -> str:
    """vLLM's spelling rule: ``--max_model_len`` is ``--max-model-len`` (the name only, not its value)."""
    if not token.startswith("--"):
        return token
    name, sep, value = token.partition("=")
    return name.replace("_", "-") + sep + value


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
