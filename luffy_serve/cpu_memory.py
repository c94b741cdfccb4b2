"""The KV cache's share of a CPU machine that the engine shares with the math layer.

On CPU, vLLM sizes its KV cache from ``--gpu-memory-utilization`` (0.92 of the machine by default) and touches
those pages only as blocks come into use, so the worker's memory grows through a long run until the kernel's
OOM killer takes the engine (measured: 21 GiB of KV cache on a 24 GiB machine beside two grading workers,
killed 25 s into the reliability benchmark). luffy-serve leaves room for what runs beside the engine: each
grading worker's address-space cap and the API process, within the machine or its cgroup's limit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from luffy_math.workers.pool import WORKER_MEMORY_BYTES

logger = logging.getLogger("luffy_serve")

GiB = 1 << 30
VLLM_DEFAULT_SHARE = 0.92  # vllm.config.CacheConfig.gpu_memory_utilization
API_PROCESS_BYTES = 2 * GiB  # the HTTP process, the engine-core process and the demo, measured well under this
SMALLEST_SHARE = 0.1


def physical_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_bytes() -> int:
    """Memory this process may use: the machine's, or its cgroup's limit where that is smaller (a container,
    whose /proc/meminfo, which vLLM reads, still shows the host)."""
    usable = physical_bytes()
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            usable = min(usable, int(text))
    return usable


def engine_share(usable: int, physical: int, math_workers: int) -> float:
    """The ``--gpu-memory-utilization`` (a share of ``physical``, as vLLM reads it) that gives the engine what
    vLLM would of ``usable`` less room for ``math_workers`` capped workers and the API process."""
    beside = math_workers * WORKER_MEMORY_BYTES + API_PROCESS_BYTES
    share = (VLLM_DEFAULT_SHARE * usable - beside) / physical
    return round(max(SMALLEST_SHARE, min(VLLM_DEFAULT_SHARE, share)), 3)


def kv_cache_is_sized(args) -> bool:
    """Whether the user chose the CPU KV cache's size: a flag, or vLLM's own environment variable."""
    return (args.gpu_memory_utilization is not None or args.kv_cache_memory_bytes is not None
            or os.environ.get("VLLM_CPU_KVCACHE_SPACE", "0") not in ("", "0"))


def share_beside(math_workers: int) -> float | None:
    """For an engine started in code beside ``math_workers`` grading workers (the harness's): the share to pass
    on CPU, or None where vLLM's own sizing applies (a GPU, or VLLM_CPU_KVCACHE_SPACE set)."""
    from .vllm_compat import on_cpu

    if not on_cpu() or os.environ.get("VLLM_CPU_KVCACHE_SPACE", "0") not in ("", "0"):
        return None
    return engine_share(usable_bytes(), physical_bytes(), math_workers)


def fill_in_memory_share(args, on_cpu: bool) -> None:
    """Set ``args.gpu_memory_utilization`` where the user left it (``None``): vLLM's default on a GPU, on CPU a
    share that leaves the math layer its room (unless the KV cache is sized another way)."""
    if args.gpu_memory_utilization is not None:
        return
    if not on_cpu or kv_cache_is_sized(args):
        args.gpu_memory_utilization = VLLM_DEFAULT_SHARE
        return
    workers = args.grading_workers + args.grade_workers
    physical = physical_bytes()
    args.gpu_memory_utilization = engine_share(usable_bytes(), physical, workers)
    logger.info("CPU: the engine takes %.1f of %.1f GiB (--gpu-memory-utilization %s), leaving room for %d grading "
                "workers (%.0f GiB each at most) and the API process; --gpu-memory-utilization, "
                "--kv-cache-memory-bytes or VLLM_CPU_KVCACHE_SPACE choose otherwise",
                args.gpu_memory_utilization * physical / GiB, physical / GiB, args.gpu_memory_utilization, workers,
                WORKER_MEMORY_BYTES / GiB)
