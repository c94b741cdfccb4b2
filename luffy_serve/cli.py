"""``luffy-serve``: vLLM's OpenAI server flags, plus LUFFY checkpoint names and the math layer.

Every vLLM serving flag works as with ``vllm serve`` (``--tensor-parallel-size``, ``--dtype``,
``--gpu-memory-utilization``, ``--max-model-len``, ``--api-key`` ...). What luffy-serve changes:

- ``--model`` takes a registry name (``luffy-qwen-math-1.5b-zero``, the default), a hub id or a directory;
  the model card's sampling (temperature 0.6, max_tokens 8192) applies when a request leaves it out;
- the reasoning split fits the tokenizer (``--reasoning-parser auto``): vLLM's deepseek_r1 parser when
  ``<think>``/``</think>`` are single tokens, else the math layer splits the text (Qwen2.5's vocabulary);
- responses carry ``answer``, ``majority_answer`` and, on request, ``grade`` (see math_extras.py);
- ``POST /v1/grade``; ``--demo`` mounts the Gradio demo at ``/demo``;
- bad flags, a model that cannot be found, a parser that cannot work with the tokenizer, a port that cannot
  be bound: one line on stderr and exit code 2, before any weights load;
- SIGTERM drains the responses in flight and exits 0; an engine that dies while serving ends the server with
  exit code 1 (its streams get vLLM's error event first), so that a supervisor starts a fresh one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn
import uvloop

from luffy_math.workers import workers_beside_engine
from luffy_util.errors import first_line

from . import arg_types
from .cpu_memory import fill_in_memory_share
from .orphans import adopt_orphans, stop_descendants
from .reasoning import AUTO, ReasoningSetupError, choose_split, load_tokenizer
from .registry import CHECKPOINTS, DEFAULT_MODEL, resolve

logger = logging.getLogger("luffy_serve")


class ModelNotFound(Exception):
    pass


# The flags of what one client may ask (luffy_serve.app.Limits, whose field of the same name is the default).
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


def build_parser():
    from .vllm_compat import FlexibleArgumentParser, make_arg_parser

    parser = FlexibleArgumentParser(
        prog="luffy-serve",
        description="Serve a LUFFY checkpoint behind a math-aware OpenAI-compatible API.",
        epilog="Registry names: " + ", ".join(CHECKPOINTS),
    )
    parser = make_arg_parser(parser)
    for action in parser._actions:  # vLLM's own --port takes any integer; a bad one hung after the load
        if action.dest == "port":
            action.type = arg_types.port
    luffy = parser.add_argument_group("luffy")
    luffy.add_argument("--demo", action="store_true", help="Mount the Gradio demo at /demo.")
    luffy.add_argument("--grading-workers", type=arg_types.positive_int, default=workers_beside_engine(),
                       help="Worker processes for answer votes and grading.")
    luffy.add_argument("--grading-timeout", type=arg_types.positive_float, default=10.0,
                       help="Seconds one grade or vote may take before its worker is killed.")
    # What one client may ask of the server: body size, /v1/grade's deadline, caps and capacity.
    from .app import Limits

    limits = Limits()
    luffy.add_argument("--grade-workers", type=arg_types.positive_int, default=1,
                       help="Worker processes for POST /v1/grade: a pool of its own at a lower CPU priority, so "
                            "that the math fields of chat and completions never wait behind it.")
    for flag, kind, help_text in LIMIT_FLAGS:  # each defaults to the Limits field of its name
        luffy.add_argument(flag, type=kind, default=getattr(limits, flag[2:].replace("-", "_")),
                           help=help_text + " (default %(default)s).")
    luffy.add_argument("--public-metrics", action="store_true",
                       help="Serve /metrics without the API key (by default it needs the key, as every route "
                            "but /health and /ping).")
    # None: filled in after parsing, on CPU with room left for the math layer (cpu_memory.py).
    parser.set_defaults(model=DEFAULT_MODEL, reasoning_parser=AUTO, gpu_memory_utilization=None)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse, then resolve the model name and fold the card's sampling defaults under the user's."""
    from .vllm_compat import on_cpu, serve_engine_defaults, validate_parsed_serve_args

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "model_tag", None):
        args.model = args.model_tag
    args.typed_model = args.model
    model, name, sampling = resolve(args.model)
    args.model = model
    if not args.served_model_name:
        args.served_model_name = [name]
    args.override_generation_config = {**sampling, **(args.override_generation_config or {})}
    serve_engine_defaults(args)  # on CPU: whole prefills (vllm_compat)
    fill_in_memory_share(args, on_cpu=on_cpu())
    try:
        validate_parsed_serve_args(args)
    except (TypeError, ValueError) as exc:
        parser.error(first_line(exc))
    return args


def check_model(model: str, typed: str | None = None) -> None:
    """Fail fast, in one line, when the model is neither a checkpoint directory, nor in the local hub cache,
    nor a hub id that the hub confirms. ``typed`` is the name the user gave (a registry name, say).

    When the checkpoint is cached but the hub cannot be reached, the rest of start-up runs offline instead of
    spending half a minute on the hub's retries.
    """
    from huggingface_hub import HfApi, constants, hf_hub_download
    from huggingface_hub.errors import HFValidationError

    typed = typed or model
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"'{model}' is a directory without config.json, not a model checkpoint")
        return
    named = f"'{typed}'" + (f" (hub id {model})" if typed != model else "")
    try:
        hf_hub_download(model, "config.json", local_files_only=True)
        cached = True
    except HFValidationError:
        raise ModelNotFound(f"cannot find model {named}: no such directory, and not a hub id{_hint(typed)}") from None
    except Exception:  # not in the local cache
        cached = False
    where = f"the local cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE:
        if cached:
            return
        raise ModelNotFound(f"cannot find model {named}: not in {where}, and HF_HUB_OFFLINE is set, so the hub "
                            f"({constants.ENDPOINT}) was not asked; download it where the hub is reachable "
                            f"(hf download {model}) or pass a checkpoint directory{_hint(typed)}")
    try:
        HfApi().model_info(model, timeout=HUB_TIMEOUT_SECONDS)
    except Exception as exc:  # unreachable, unknown id, gated repo
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        reachable = getattr(exc, "response", None) is not None
        if cached and not reachable:
            logger.warning("the hub (%s) cannot be reached (%s); serving the cached copy of %s offline",
                           constants.ENDPOINT, reason, model)
            _go_offline()
            return
        if reachable:
            problem = f"the hub ({constants.ENDPOINT}) does not give it ({reason})"
        else:
            problem = f"the hub ({constants.ENDPOINT}) cannot be reached ({reason})"
        raise ModelNotFound(f"cannot find model {named}: not in {where}, and {problem}; pass a checkpoint "
                            f"directory, or set HF_HUB_OFFLINE=1 to use cached models only{_hint(typed)}") from None


HUB_TIMEOUT_SECONDS = 10.0


def _hint(typed: str) -> str:
    """`` (did you mean 'x'?)`` for a near miss of a registry name; nothing for a registry name itself."""
    if typed.lower() in CHECKPOINTS:
        return ""
    hint = difflib.get_close_matches(typed.lower(), list(CHECKPOINTS), n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def _go_offline() -> None:
    """Make this process and the engine processes it spawns skip the hub."""
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True


def bind_socket(host: str | None, port: int) -> socket.socket:
    """The listening socket, bound before the engine loads: a taken port fails in a second, not after the
    weights are in memory."""
    host = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve(args: argparse.Namespace, sock: socket.socket) -> int:
    """Answer HTTP at once (503 while loading), load the engine in a thread, then attach vLLM's app.

    Returns the exit code: 0 after SIGTERM or SIGINT (in-flight responses drain first), ENGINE_DEAD_EXIT when
    the engine died while serving (its requests end with vLLM's error; the server then stops, so that a
    supervisor starts a fresh one instead of keeping a process that answers 503 for good).
    """
    from luffy_math.workers import GradingPool

    from .app import GRADE_NICE, Limits, LuffyApp
    from .vllm_compat import build_app, create_engine, engine_died, init_app_state, terminate_if_errored

    api_keys = args.api_key if isinstance(args.api_key, list) else ([args.api_key] if args.api_key else [])
    args.api_key = None  # luffy's own check answers 401 in OpenAI's error shape; vLLM's would not
    pool = GradingPool(workers=args.grading_workers, timeout=args.grading_timeout)
    # /v1/grade gets workers of its own, niced: its floods neither delay the math fields nor slow the engine.
    grade_pool = GradingPool(workers=args.grade_workers, timeout=args.grading_timeout, nice=GRADE_NICE)
    limits = Limits(max_request_bytes=args.max_request_bytes, grade_deadline=args.grade_deadline,
                    grade_max_items=args.grade_max_items, grade_max_chars=args.grade_max_chars,
                    grade_capacity=args.grade_capacity, public_metrics=args.public_metrics)
    app = LuffyApp(api_keys, pool, grade_pool, grade_timeout=3 * args.grading_timeout, limits=limits)
    for warming in (pool, grade_pool):  # start the workers while the engine loads, not on the first request
        warming.submit_grade("\\boxed{1}", "1")
    if args.demo:
        from app.demo import mount  # the demo builds and mounts itself (gradio); the server only calls it

        # The demo's backend calls this same server over HTTP; the key never reaches the browser.
        host = args.host if args.host not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
        app.attach_demo(mount, f"http://{host}:{args.port}", api_keys[0] if api_keys else None,
                        args.served_model_name[0])

    # The same uvicorn settings vLLM's own server takes from these flags (TLS, keep-alive, h11 limits).
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.uvicorn_log_level,
                            access_log=not args.disable_uvicorn_access_log, timeout_keep_alive=5,
                            ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile,
                            ssl_ca_certs=args.ssl_ca_certs, ssl_cert_reqs=args.ssl_cert_reqs,
                            **({"ssl_ciphers": args.ssl_ciphers} if getattr(args, "ssl_ciphers", None) else {}))
    for name in ("h11_max_incomplete_event_size", "h11_max_header_count"):
        if getattr(args, name, None):
            setattr(config, name, getattr(args, name))
    server = QuietServer(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = asyncio.create_task(server.serve(sockets=[sock]))
    engine = None
    dead = False
    try:
        loading = asyncio.create_task(asyncio.to_thread(create_engine, args))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({loading, stopping, http}, return_when=asyncio.FIRST_COMPLETED)
        if http.done():
            await http  # the port could not be bound: raise its error
        engine = await loading  # on a signal mid-load, still wait so the engine can be shut down
        if stop.is_set():
            return 0
        tasks = await engine.get_supported_tasks()
        vllm_app = build_app(args, tasks, engine.model_config)
        await init_app_state(engine, vllm_app.state, args, tasks)
        vllm_app.state.server = server  # vLLM's engine-dead handler (non-streaming requests) stops it through this
        died = asyncio.create_task(engine_died(engine))
        async with vllm_app.router.lifespan_context(vllm_app):
            app.attach(vllm_app, split_text=args.split_reasoning_text)
            logger.info("luffy-serve ready on http://%s:%s", args.host, args.port)
            await asyncio.wait({stopping, http, died}, return_when=asyncio.FIRST_COMPLETED)
            if engine.errored and not stop.is_set():
                # The error events are out already: open responses get a short grace, not a drain. Whether
                # to stop is vLLM's own rule (VLLM_KEEP_ALIVE_ON_ENGINE_DEATH keeps the server up).
                server.config.timeout_graceful_shutdown = ENGINE_DEAD_GRACE_S
                terminate_if_errored(server, engine)
                logger.error("the vLLM engine died: %s", f"luffy-serve stops with exit code {ENGINE_DEAD_EXIT} "
                             "so that its supervisor starts a fresh one" if server.should_exit else
                             "luffy-serve stays up (VLLM_KEEP_ALIVE_ON_ENGINE_DEATH), answering 503")
                await asyncio.wait({stopping, http}, return_when=asyncio.FIRST_COMPLETED)
        died.cancel()
        dead = engine.errored and not stop.is_set()
    finally:
        server.should_exit = True
        await asyncio.gather(http, return_exceptions=True)
        if dead:  # nothing is left to finish: stop the workers, the grading host and the engine's orphans at once
            stop_descendants(grace=ORPHAN_GRACE_S)
        if engine is not None:
            engine.shutdown()
        pool.close()
        grade_pool.close()
    return ENGINE_DEAD_EXIT if dead else 0


ENGINE_DEAD_EXIT = 1  # the engine died while serving (start-up refusals exit 2)
ENGINE_DEAD_GRACE_S = 1.0  # after the engine died: seconds for open responses to finish sending their error
ORPHAN_GRACE_S = 0.2  # then for the processes left (grading workers, the engine's orphaned worker) to end on SIGTERM


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` stops it after shutting the engine down."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        check_model(args.model, args.typed_model)
        try:
            tokenizer = load_tokenizer(args)
        except Exception as exc:  # missing or broken tokenizer files
            raise ModelNotFound(f"cannot load the tokenizer of '{args.model}': {first_line(exc)}") from None
        args.split_reasoning_text = choose_split(args, tokenizer)
        sock = bind_socket(args.host, args.port)
    except (ModelNotFound, ReasoningSetupError) as exc:
        print(f"luffy-serve: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"luffy-serve: error: cannot listen on {args.host or '0.0.0.0'}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        sys.exit(2)
    logger.info("reasoning split: %s", "by text (no single think tokens)" if args.split_reasoning_text
                else f"vLLM parser {args.reasoning_parser!r}" if args.reasoning_parser else "none")
    adopt_orphans()  # an engine core that dies leaves its worker process to this one, to be stopped on the way out
    died = False
    try:
        code = uvloop.run(serve(args, sock))  # the event loop vLLM's own server runs on
        died = code == ENGINE_DEAD_EXIT
    except KeyboardInterrupt:
        code = 0
    except Exception as exc:  # engine start-up failures: one line, not a traceback wall
        logger.debug("start-up failed", exc_info=True)
        print(f"luffy-serve: error: {type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        code = 1
    finally:
        stopped = stop_descendants()
        logger.debug("stopped on the way out: %s", ", ".join(stopped) or "nothing")
    if died:  # all it started is stopped: skip the interpreter's teardown (seconds with torch and vLLM loaded)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()

