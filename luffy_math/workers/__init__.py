"""luffy_math's worker runtime: grading in killable worker processes, with a hard bound on every item.

- :class:`GradingPool` (:mod:`.pool`): long-lived workers for servers, the harness and the trainer's reward;
  ``submit_grade``/``submit_batch``/``submit_modes``/``submit_vote``, and ``submit``/``submit_jobs`` for any
  module-level function;
- :func:`grade_many` (:mod:`.bulk`): bulk grading over a shared pool kept warm between calls
  (:func:`shared_pool`, :func:`close_shared_pool`); :func:`grade_one`: one item in any mode, "luffy_exact"
  included, which :func:`luffy_math.grade` grades only inside LUFFY's pinned environment;
- the same pool on another interpreter (LUFFY's pinned ``.venv-exact``): :mod:`.host` runs there as
  ``python -m luffy_math.workers.host``, :mod:`.host_client` starts and talks to it; :mod:`.warmup`: what
  the workers' fork server imports;
- how many workers: :func:`default_workers` (bulk grading: every core) and :func:`workers_beside_engine`
  (the server and the harness, where an engine shares the machine).

Only the standard library, pebble, tqdm (in grade_many), luffy_util and luffy_math are imported here: the
host runs in ``.venv-exact``, which has nothing else. Importing this package itself is cheap (the counts
below); the pool and the bulk API load on first use of their names.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from luffy_math.workers.bulk import close_shared_pool, grade_many, grade_one, shared_pool
    from luffy_math.workers.pool import GradingPool, distinct_items

# Of the cores, the share an engine's neighbours take for grading, and the most workers they get there.
BESIDE_ENGINE_SHARE = 4
BESIDE_ENGINE_MAX = 4


def default_workers() -> int:
    """All the cores this process may run on (bulk grading, where nothing else needs them)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_beside_engine() -> int:
    """Grading workers where an engine shares the machine (the server, the harness): a quarter of the cores,
    at least 1 and at most 4. Grading a sample costs milliseconds against the seconds it takes to generate,
    so a few processes keep pace, and more would only take CPU from the engine (its scheduler and
    detokenizer run on the CPU even beside a GPU)."""
    return max(1, min(BESIDE_ENGINE_MAX, default_workers() // BESIDE_ENGINE_SHARE))


_LAZY = {
    "GradingPool": "luffy_math.workers.pool",
    "distinct_items": "luffy_math.workers.pool",
    "grade_many": "luffy_math.workers.bulk",
    "grade_one": "luffy_math.workers.bulk",
    "shared_pool": "luffy_math.workers.bulk",
    "close_shared_pool": "luffy_math.workers.bulk",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GradingPool",
    "close_shared_pool",
    "default_workers",
    "distinct_items",
    "grade_many",
    "grade_one",
    "shared_pool",
    "workers_beside_engine",
]
