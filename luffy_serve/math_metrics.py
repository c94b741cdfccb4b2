"""The math layer's Prometheus metrics, served by vLLM's own ``/metrics`` beside vLLM's.

vLLM's ``/metrics`` route serves prometheus-client's default registry (``vllm.v1.metrics.prometheus``:
``get_prometheus_registry`` returns it unless several API server processes share a ``PROMETHEUS_MULTIPROC_DIR``,
which luffy-serve's one process never sets), so the metrics here register there and need no endpoint of their
own. Names start with ``luffy_``:

- ``luffy_grading_seconds{mode, route}``: histogram of grading time: one choice's grade on the chat and
  completions routes, one request's items on ``/v1/grade``;
- ``luffy_graded_items_total{mode, route}`` and ``luffy_grading_timed_out_items_total{mode, route}``;
- ``luffy_grading_worker_restarts_total{pool, reason}``: grading workers replaced (read from the pools at
  each scrape; ``pool`` is ``math_fields`` or ``grade``, ``reason`` one of
  :data:`luffy_math.workers.pool.RESTART_REASONS`);
- ``luffy_grade_requests_in_flight``, ``luffy_grade_items_in_flight``: ``/v1/grade`` work admitted and not
  answered yet; ``luffy_grade_requests_refused_total``: ``/v1/grade`` requests answered 429 (queue full);
- ``luffy_votes_total{route, outcome}``: majority votes by outcome (``majority``, ``tie``, ``no_answer``,
  ``timed_out``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from luffy_math.vote import Majority

# Grading takes milliseconds for most answers and up to the grading timeout (10 s by default) for the worst.
GRADING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

GRADING_SECONDS = Histogram("luffy_grading_seconds", "Seconds to grade: one choice's grade on chat and "
                            "completions, one request's items on /v1/grade", ["mode", "route"],
                            buckets=GRADING_BUCKETS)
GRADED_ITEMS = Counter("luffy_graded_items", "Answers graded", ["mode", "route"])
TIMED_OUT_ITEMS = Counter("luffy_grading_timed_out_items", "Answers whose grade timed out (past the grading "
                          "timeout or the request's deadline)", ["mode", "route"])
GRADE_REQUESTS_IN_FLIGHT = Gauge("luffy_grade_requests_in_flight", "/v1/grade requests admitted, not answered yet")
GRADE_ITEMS_IN_FLIGHT = Gauge("luffy_grade_items_in_flight", "Items of the /v1/grade requests in flight")
GRADE_REFUSED = Counter("luffy_grade_requests_refused", "/v1/grade requests refused with 429: the grading queue "
                        "was full")
VOTES = Counter("luffy_votes", "Majority votes by outcome", ["route", "outcome"])
TIMED_OUT = "timed_out"


def vote_outcome(majority: Majority) -> str:
    """The ``outcome`` label of a vote: ``majority``, ``tie``, ``no_answer`` or ``timed_out``."""
    return majority.reason or "majority"


def count_vote(route: str, majority: Majority) -> None:
    VOTES.labels(route=route, outcome=vote_outcome(majority)).inc()


def observe_grading(mode: str, route: str, seconds: float, items: int, timed_out: int) -> None:
    GRADING_SECONDS.labels(mode=mode, route=route).observe(seconds)
    GRADED_ITEMS.labels(mode=mode, route=route).inc(items)
    if timed_out:
        TIMED_OUT_ITEMS.labels(mode=mode, route=route).inc(timed_out)


class WorkerRestarts(Collector):
    """``luffy_grading_worker_restarts_total``: read from the watched pools at each scrape (luffy_math counts
    them; it imports no prometheus-client, since its grading host runs where there is none)."""

    def __init__(self) -> None:
        self._pools: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def watch(self, name: str, pool) -> None:
        """Report ``pool`` (a GradingPool) under the label ``pool=name``."""
        self._pools[name] = pool

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("luffy_grading_worker_restarts", "Grading workers started in place of one "
                                     "that was killed or died", labels=["pool", "reason"])
        for name, pool in sorted(self._pools.items()):
            for reason, count in pool.restarts().items():
                family.add_metric([name, reason], count)
        yield family


WORKER_RESTARTS = WorkerRestarts()
REGISTRY.register(WORKER_RESTARTS)
