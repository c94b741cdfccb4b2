"""A graceful stop on SIGTERM, what preemptible schedulers (SLURM, Kubernetes, spot machines) send before they
kill: the trainer finishes its step, saves a checkpoint, and exits 0; the same command then resumes.

``install`` sets the handler (the first SIGTERM only asks; a second one exits at once, with 143); the engines
poll ``requested`` at each step boundary.
"""

from __future__ import annotations

import signal
import sys
import threading

_requested = threading.Event()


def _on_sigterm(signum: int, frame: object) -> None:
    if _requested.is_set():
        raise SystemExit(128 + signum)
    _requested.set()
    print("SIGTERM: the trainer saves a checkpoint at the end of this step and exits "
          "(a second SIGTERM exits at once)", file=sys.stderr, flush=True)


def install() -> None:
    """Handle SIGTERM as above (from the main thread: Python's rule for signal handlers)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def requested() -> bool:
    return _requested.is_set()


def wait(timeout: float | None = None) -> bool:
    """Block until a stop is asked for (or ``timeout`` passes); returns whether it was."""
    return _requested.wait(timeout)
