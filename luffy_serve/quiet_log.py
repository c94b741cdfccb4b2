"""What luffy-serve logs: its own lines, the warnings that matter, and everyone else's at the level asked for.

``--log-level`` (every process of the server: this one, vLLM's engine core and its workers):

- ``quiet`` (the default): luffy's own lines (what loads, the reasoning split, the KV cache, ready with the
  URL), and the warnings and errors of vLLM and the libraries under it, less the known noise below;
- ``warning``: every warning, the known noise too;
- ``info``: what ``vllm serve`` shows (vLLM's INFO lines, the access log while loading);
- ``debug``: everything.

The engine's processes are spawned; each gets the level through the environment (``LUFFY_SERVE_LOG_LEVEL``),
vLLM's own logging through its ``VLLM_LOGGING_CONFIG_PATH`` file (written here, with :class:`LevelFilter` on
its handler), and the records logged before vLLM configures its logging through :func:`apply_from_env`,
which runs when a spawned process imports the server's main module (multiprocessing's spawn does that first).
Variables the user set (``VLLM_LOGGING_CONFIG_PATH``, ``VLLM_LOGGING_LEVEL``, ``TORCH_CPP_LOG_LEVEL``) win.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

LEVELS = ("quiet", "warning", "info", "debug")
DEFAULT = "quiet"
ENV = "LUFFY_SERVE_LOG_LEVEL"
OWN = "luffy_serve"  # luffy's logger: its INFO lines show at every level
FORMAT = "%(levelname)s %(name)s: %(message)s"

# The lowest level shown of other loggers (vLLM, uvicorn, transformers ...).
THRESHOLD = {"quiet": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}

# Warnings that tell a user of luffy-serve nothing they can act on (shown from --log-level warning on), by a
# part of their message; errors are never dropped.
NOISE = (
    "Attempted to load weight",  # a float32 checkpoint cast to the served dtype: what --dtype asked for
    "This model does not officially support disabling chunked prefill",  # luffy keeps prefills whole on CPU
    "Triton is installed, but doesn't include CPU backend",  # CPU: Triton is not used
    "Triton is not installed. triton-cpu is expected",
    "Model Runner V2 requires Triton",
    "Reset SSM cache type",  # for Mamba models only
    "libtcmalloc is not found in LD_PRELOAD",  # CPU allocator tuning hints
    "libiomp is not found in LD_PRELOAD",
    "Failed to create oneDNN linear",  # vLLM falls back to torch's linear layer
    "Compiling model again due to a load failure",  # a torch.compile cache miss: it compiles once more
    "Inductor compilation was disabled by user settings",
    "Default vLLM sampling parameters have been overridden",  # luffy sets the card's sampling on purpose
)
# Python warnings from inside vLLM and torch (aimed at their developers), by category and message start.
PYTHON_WARNINGS = (
    (FutureWarning, r"`torch\.distributed\.reduce_op` is deprecated"),
)


def level_from(text: str) -> str:
    """An argparse type: one of LEVELS, any case (vLLM's own names, ``INFO`` or ``DEBUG``, work too)."""
    import argparse

    level = text.strip().lower()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LEVELS)}, got {text!r}")
    return level


def vllm_level(level: str) -> str:
    """vLLM's name of the level its loggers get for a luffy level."""
    return logging.getLevelName(THRESHOLD[level])


class LevelFilter(logging.Filter):
    """Shows luffy's lines and, of everyone else's, those at the level asked for, less the noise at ``quiet``."""

    def __init__(self, level: str | None = None):
        super().__init__()
        self.level = level or os.environ.get(ENV, DEFAULT)
        if self.level not in LEVELS:
            self.level = DEFAULT

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == OWN or record.name.startswith(OWN + "."):
            return record.levelno >= min(logging.INFO, THRESHOLD[self.level])
        if record.levelno < THRESHOLD[self.level]:
            return False
        if self.level == "quiet" and record.levelno < logging.ERROR:
            return not _is_noise(record)
        return True


def _is_noise(record: logging.LogRecord) -> bool:
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: show it as it is
        return False
    return any(noise in message for noise in NOISE)


def setup(level: str) -> None:
    """For this process and every one it starts: the log level, vLLM's logging file, the C++ and Python warnings."""
    os.environ[ENV] = level
    os.environ.setdefault("VLLM_LOGGING_LEVEL", vllm_level(level))
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", str(_vllm_config_file(level)))
    if THRESHOLD[level] > logging.INFO:
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # c10's warnings (NUMA binding ...) at start-up
    _configure(level)


def apply_from_env() -> None:
    """In a process that the server spawned (the level is in the environment): the same filter and warnings
    filters as in the server, for what is logged before vLLM configures its own logging."""
    level = os.environ.get(ENV)
    if level in LEVELS and not _configured():
        _configure(level)


def _configured() -> bool:
    return any(isinstance(f, LevelFilter) for h in logging.getLogger().handlers for f in h.filters)


def _configure(level: str) -> None:
    root = logging.getLogger()
    if not _configured():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(LevelFilter(level))
        root.addHandler(handler)
    root.setLevel(min(logging.INFO, THRESHOLD[level]))
    if level == "quiet":
        for category, message in PYTHON_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)


@contextlib.contextmanager
def root_level_kept() -> Iterator[None]:
    """Undo a change of the root logger's level made inside (model_hosting_container_standards, which vLLM's
    SageMaker routes import, sets it to ERROR on import)."""
    level = logging.getLogger().level
    try:
        yield
    finally:
        logging.getLogger().setLevel(level)


def _vllm_config_file(level: str) -> Path:
    """vLLM's logging configuration (its format, on its stream) with :class:`LevelFilter` on its handler."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"vllm": {
            "()": "vllm.logging_utils.NewLineFormatter", "datefmt": "%m-%d %H:%M:%S",
            "format": "(%(vllm_process_name)s pid=%(process)d) %(levelname)s %(asctime)s "
                      "[%(fileinfo)s:%(lineno)d] %(message)s"}},
        "filters": {"luffy": {"()": f"{__name__}.LevelFilter", "level": level}},
        "handlers": {"vllm": {"class": "logging.StreamHandler", "formatter": "vllm", "filters": ["luffy"],
                              "stream": os.environ.get("VLLM_LOGGING_STREAM", "ext://sys.stdout")}},
        "loggers": {"vllm": {"handlers": ["vllm"], "level": vllm_level(level), "propagate": False}},
    }
    path = Path(tempfile.gettempdir()) / f"luffy-serve-vllm-logging-{level}-{os.getuid()}.json"
    text = json.dumps(config, indent=1)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)  # whole or not at all: another server may read it now
    return path
