"""``luffy-serve``: vLLM's OpenAI server flags, plus LUFFY checkpoint names and the math layer.

Every vLLM serving flag works as with ``vllm serve`` (``--tensor-parallel-size``, ``--dtype``,
``--gpu-memory-utilization``, ``--max-model-len``, ``--api-key`` ...). What luffy-serve changes:

- ``--model`` takes a registry name (``luffy-qwen-math-1.5b-zero``, the default), a hub id or a directory;
  the model card's sampling (temperature 0.6, max_tokens 8192) applies when a request leaves it out;
- the reasoning split fits the tokenizer (``--reasoning-parser auto``): vLLM's deepseek_r1 parser when
  ``<think>``/``</think>`` are single tokens, else the math layer splits the text (Qwen2.5's vocabulary);
- responses carry ``answer``, ``majority_answer`` and, on request, ``grade`` (see math_extras.py);
- ``POST /v1/grade``; ``--demo`` mounts the Gradio demo at ``/demo``;
- start-up: flags are checked before vLLM is imported (early_args.py: one line and exit code 2 for a mistyped
  flag or a bad value, ``--help`` at once); then the port listens and answers 503 with ``Retry-After`` while
  vLLM loads (early_port.py); a model that cannot be found, a parser that cannot work with the tokenizer, a
  port that cannot be bound, a value vLLM refuses: one line on stderr and exit code 2, before any weights load;
- a quiet log (quiet_log.py, ``--log-level``);
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
import time
from pathlib import Path

import uvicorn
import uvloop

from luffy_util import arg_types
from luffy_util.errors import first_line

from . import early_args, quiet_log
from .early_args import LIMIT_FLAGS, Refused
from .early_port import StartingApp, bind_socket, lifespan_of
from .orphans import adopt_orphans, stop_descendants
from .reasoning import AUTO, ReasoningSetupError
from .registry import CHECKPOINTS, DEFAULT_MODEL, resolve

logger = logging.getLogger("luffy_serve")
IMPORTED = time.monotonic()  # about when the process started: "ready after N s" counts from here

quiet_log.apply_from_env()  # a process the server spawned imports this main module first: the same log filter

__all__ = ["LIMIT_FLAGS", "bind_socket", "build_parser", "check_model", "main", "parse_args"]


class ModelNotFound(Exception):
    pass


def build_parser():
    """vLLM's ``vllm serve`` parser with luffy's flags added (imports vLLM)."""
    from .vllm_compat import FlexibleArgumentParser, make_arg_parser

    parser = FlexibleArgumentParser(
        prog="luffy-serve",
        description="Serve a LUFFY checkpoint behind a math-aware OpenAI-compatible API.",
        epilog="Registry names: " + ", ".join(CHECKPOINTS),
    )
    parser = make_arg_parser(parser)
    for action in parser._actions:
        if action.dest == "port":  # vLLM's own --port takes any integer; a bad one hung after the load
            action.type = arg_types.port
        elif action.dest == "log_level":  # luffy's levels (quiet_log.py); vLLM's logging follows them
            action.type, action.choices, action.default = quiet_log.level_from, None, quiet_log.DEFAULT
            action.help = early_args.LOG_LEVEL_HELP
        elif action.dest == "uvicorn_log_level":
            action.default = None  # from --log-level
    early_args.add_luffy_flags(parser.add_argument_group("luffy"))
    # None: filled in after parsing, on CPU with room left for the math layer (cpu_memory.py).
    parser.set_defaults(model=DEFAULT_MODEL, reasoning_parser=AUTO, gpu_memory_utilization=None)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse with vLLM's parser (imports vLLM), then resolve the model name and fold the card's sampling
    defaults under the user's. A refusal raises :class:`Refused` (one line), not argparse's usage and exit."""
    from .cpu_memory import fill_in_memory_share
    from .vllm_compat import on_cpu, serve_engine_defaults, validate_parsed_serve_args

    parser = build_parser()

    def refuse(message: str):
        raise Refused(message)

    parser.error = refuse
    args = parser.parse_args(argv)
    if getattr(args, "model_tag", None):
        args.model = args.model_tag
    args.luffy_log_level = args.log_level
    args.log_level = quiet_log.vllm_level(args.log_level)  # what vLLM's engine processes configure
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
        raise Refused(first_line(exc)) from None
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


async def serve(argv: list[str], early: argparse.Namespace, sock: socket.socket) -> int:
    """Answer HTTP at once (503 while loading), import vLLM and load the engine in threads, then hand the
    socket's requests to luffy's app in front of vLLM's.

    Returns the exit code: 0 after SIGTERM or SIGINT (in-flight responses drain first), ENGINE_DEAD_EXIT when
    the engine died while serving (its requests end with vLLM's error; the server then stops, so that a
    supervisor starts a fresh one instead of keeping a process that answers 503 for good). Start-up refusals
    raise (Refused, ModelNotFound, ReasoningSetupError: exit code 2).
    """
    starting = StartingApp()
    loud = quiet_log.THRESHOLD[early.log_level] <= logging.INFO
    # The same uvicorn settings vLLM's own server takes from these flags (TLS, keep-alive, h11 limits).
    config = uvicorn.Config(starting, host=early.host, port=early.port,
                            log_level=early.uvicorn_log_level or ("info" if loud else "warning"),
                            access_log=not early.disable_uvicorn_access_log, timeout_keep_alive=5,
                            ssl_keyfile=early.ssl_keyfile, ssl_certfile=early.ssl_certfile,
                            ssl_ca_certs=early.ssl_ca_certs, ssl_cert_reqs=early.ssl_cert_reqs,
                            **({"ssl_ciphers": early.ssl_ciphers} if early.ssl_ciphers else {}))
    for name in ("h11_max_incomplete_event_size", "h11_max_header_count"):
        setattr(config, name, getattr(early, name))
    server = QuietServer(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    engine = None
    pools = []
    dead = False

    async def until(task: asyncio.Task):
        """``task``'s result, unless the server stops first (a signal, or the HTTP server failed): None."""
        await asyncio.wait({task, stopping, http}, return_when=asyncio.FIRST_COMPLETED)
        if http.done():
            await http  # the port could not be served: raise its error
        return None if stop.is_set() and not task.done() else await task

    try:
        args = await until(asyncio.create_task(asyncio.to_thread(prepare, argv, early.model, starting)))
        if args is None:
            return 0
        from luffy_math.workers import GradingPool

        from .app import GRADE_NICE, Limits, LuffyApp
        from .vllm_compat import build_app, create_engine, engine_died, init_app_state, terminate_if_errored

        api_keys = args.api_key if isinstance(args.api_key, list) else ([args.api_key] if args.api_key else [])
        args.api_key = None  # luffy's own check answers 401 in OpenAI's error shape; vLLM's would not
        pool = GradingPool(workers=args.grading_workers, timeout=args.grading_timeout)
        # /v1/grade gets workers of its own, niced: its floods neither delay the math fields nor slow the engine.
        grade_pool = GradingPool(workers=args.grade_workers, timeout=args.grading_timeout, nice=GRADE_NICE)
        pools = [pool, grade_pool]
        limits = Limits(max_request_bytes=args.max_request_bytes, grade_deadline=args.grade_deadline,
                        grade_max_items=args.grade_max_items, grade_max_chars=args.grade_max_chars,
                        grade_capacity=args.grade_capacity, public_metrics=args.public_metrics)
        app = LuffyApp(api_keys, pool, grade_pool, grade_timeout=3 * args.grading_timeout, limits=limits)
        for warming in pools:  # start the workers while the engine loads, not on the first request
            warming.submit_grade("\\boxed{1}", "1")
        starting.set_stage(f"loading the weights of {args.typed_model} into vLLM's engine")
        loading = asyncio.create_task(asyncio.to_thread(create_engine, args))
        if args.demo:
            from app.demo import mount  # the demo builds and mounts itself (gradio); the server only calls it

            # The demo's backend calls this same server over HTTP; the key never reaches the browser.
            host = args.host if args.host not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
            await asyncio.to_thread(app.attach_demo, mount, f"http://{host}:{args.port}",
                                    api_keys[0] if api_keys else None, args.served_model_name[0])
        await asyncio.wait({loading, stopping, http}, return_when=asyncio.FIRST_COMPLETED)
        if http.done():
            await http
        engine = await loading  # on a signal mid-load, still wait so the engine can be shut down
        if stop.is_set():
            return 0
        starting.set_stage("starting the API")
        tasks = await engine.get_supported_tasks()
        with quiet_log.root_level_kept():  # a package vLLM's app imports sets the root logger to ERROR
            vllm_app = build_app(args, tasks, engine.model_config)
        await init_app_state(engine, vllm_app.state, args, tasks)
        vllm_app.state.server = server  # vLLM's engine-dead handler (non-streaming requests) stops it through this
        died = asyncio.create_task(engine_died(engine))
        async with lifespan_of(app), vllm_app.router.lifespan_context(vllm_app):
            app.attach(vllm_app, split_text=args.split_reasoning_text)
            starting.ready(app)
            if not (early.uvicorn_log_level or early.disable_uvicorn_access_log):
                logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # requests from now on
            _log_kv_cache(engine, args)
            logger.info("luffy-serve ready on %s://%s:%s (model %s) after %.1f s",
                        "https" if early.ssl_certfile else "http", _shown_host(args.host), args.port,
                        args.served_model_name[0], time.monotonic() - IMPORTED)
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
        if engine is not None:  # the core's own exit, not vLLM's 5 s then SIGKILL, frees its shared memory itself
            engine.shutdown(timeout=ENGINE_STOP_S if not dead else None)
        for pool in pools:
            pool.close()
    return ENGINE_DEAD_EXIT if dead else 0


def prepare(argv: list[str], checked_model: str, starting: StartingApp) -> argparse.Namespace:
    """Import vLLM, parse with its parser, load the tokenizer and choose the reasoning split (in a thread,
    while the port answers 503)."""
    from .reasoning import choose_split, load_tokenizer

    starting.set_stage("importing vLLM")
    args = parse_args(argv)
    from . import app  # noqa: F401  (the rest of the server, imported here rather than once ready)

    if args.typed_model != checked_model:  # not the one main checked (a --config file's, say)
        check_model(args.model, args.typed_model)
    starting.set_stage(f"loading the tokenizer of {args.typed_model}")
    try:
        tokenizer = load_tokenizer(args)
    except Exception as exc:  # missing or broken tokenizer files
        raise ModelNotFound(f"cannot load the tokenizer of '{args.model}': {first_line(exc)}") from None
    args.split_reasoning_text = choose_split(args, tokenizer)
    logger.info("Reasoning split: %s", "by text in the math layer (the tokenizer has no single think tokens)"
                if args.split_reasoning_text else f"vLLM's parser {args.reasoning_parser!r}"
                if args.reasoning_parser else "none (--reasoning-parser '')")
    return args


def _log_kv_cache(engine, args: argparse.Namespace) -> None:
    cache = getattr(getattr(engine, "vllm_config", None), "cache_config", None)
    blocks = getattr(cache, "num_gpu_blocks", None)
    if not blocks:
        return
    tokens = blocks * cache.block_size
    logger.info("KV cache: %s tokens, room for %.0f requests of --max-model-len %s at once", f"{tokens:,}",
                tokens / engine.model_config.max_model_len, engine.model_config.max_model_len)


def _shown_host(host: str | None) -> str:
    return "localhost" if host in (None, "", "0.0.0.0", "::") else host


ENGINE_DEAD_EXIT = 1  # the engine died while serving (start-up refusals exit 2)
ENGINE_STOP_S = 30.0  # on a stop: seconds for the engine core to exit by itself (vLLM's default 5 s is short on a
# busy machine: it then kills the core, whose shared memory the resource tracker frees with a warning)
ENGINE_DEAD_GRACE_S = 1.0  # after the engine died: seconds for open responses to finish sending their error
ORPHAN_GRACE_S = 0.2  # then for the processes left (grading workers, the engine's orphaned worker) to end on SIGTERM


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` stops it after shutting the engine down."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def print_vllm_help(word: str) -> None:
    """vLLM's flags (with luffy's), all of them or those matching ``word`` (vLLM's own help search)."""
    parser = build_parser()
    parser._search_keyword = word
    print(parser.format_help())


def refuse(message: str) -> None:
    print(f"luffy-serve: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        early = early_args.parse(argv)  # luffy's flags and the names of vLLM's, without importing vLLM
    except Refused as exc:
        refuse(str(exc))
    quiet_log.setup(early.log_level)
    if early.help_vllm:
        print_vllm_help(early.help_vllm)
        return
    try:
        if early.config_file:  # vLLM's --config may set the port or the model: read it with vLLM's parser
            full = parse_args(argv)
            for dest in early_args.EARLY_VLLM_DESTS:
                setattr(early, dest, getattr(full, dest))
            early.model = full.typed_model
        hub_id, _, _ = resolve(early.model)
        check_model(hub_id, early.model)
    except (Refused, ModelNotFound) as exc:
        refuse(str(exc))
    except OSError as exc:  # a --config file that cannot be read
        refuse(first_line(exc))
    try:
        sock = bind_socket(early.host, early.port)
    except OSError as exc:
        refuse(f"cannot listen on {early.host or '0.0.0.0'}:{early.port}: {exc.strerror or exc}")
    adopt_orphans()  # an engine core that dies leaves its worker process to this one, to be stopped on the way out
    refusal = None
    try:
        code = uvloop.run(serve(argv, early, sock))  # the event loop vLLM's own server runs on
    except KeyboardInterrupt:
        code = 0
    except (Refused, ModelNotFound, ReasoningSetupError) as exc:
        refusal, code = str(exc), 2
    except Exception as exc:  # engine start-up failures: one line, not a traceback wall
        logger.debug("start-up failed", exc_info=True)
        refusal, code = f"{type(exc).__name__}: {first_line(exc)}", 1
    finally:
        stopped = stop_descendants()
        logger.debug("stopped on the way out: %s", ", ".join(stopped) or "nothing")
    if refusal is not None:
        print(f"luffy-serve: error: {refusal}", file=sys.stderr)
    # All it started is stopped and its streams flushed: leave without the interpreter's teardown, which takes
    # seconds with torch and vLLM loaded and only reports the objects of Triton's bindings it cannot free
    # ("nanobind: leaked ...").
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
