"""Nothing the server started outlives it.

vLLM's engine core runs the model in a worker process of its own. When the core dies (SIGKILL, the OOM
killer), that worker is orphaned: the kernel hands it to init, and it lingers for seconds before it notices.
luffy-serve makes itself the child subreaper of its process tree (Linux's ``PR_SET_CHILD_SUBREAPER``), so such
orphans become its children, and on its way out stops whatever of its tree is still there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys

logger = logging.getLogger("luffy_serve")

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def adopt_orphans() -> None:
    """Make this process the subreaper of its descendants (a no-op off Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_descendants(grace: float = 3.0) -> list[str]:
    """SIGTERM to every process under this one, up to ``grace`` seconds for them to exit, then SIGKILL; the
    names of those that were still running. multiprocessing's resource tracker (which ignores SIGTERM) goes
    last, the way it is meant to: its pipe closed, it frees what the others left behind and exits."""
    from multiprocessing import resource_tracker

    import psutil

    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    try:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid != tracker]
    except psutil.Error:
        return []
    names = []
    for process in left:
        with contextlib.suppress(psutil.Error):
            names.append(process.name())
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)
    if tracker is not None:
        with contextlib.suppress(OSError, AttributeError):
            resource_tracker._resource_tracker._stop()
    return names
