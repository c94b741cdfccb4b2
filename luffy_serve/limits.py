"""What one client may ask of luffy-serve: the defaults of the flags of the same names.

A module of its own, with nothing heavy to import, so that ``luffy-serve --help`` shows these defaults
without importing the server (luffy_serve.app imports vLLM).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server (the luffy flags of the same names)."""

    max_request_bytes: int = 16 << 20  # any request body
    grade_deadline: float = 30.0  # seconds one /v1/grade request may take
    grade_max_items: int = 1024  # items in one /v1/grade request
    grade_max_chars: int = 1_000_000  # characters of one /v1/grade request, all items and golds together
    grade_capacity: int = 2048  # items in flight on the /v1/grade pool, all requests together
    public_metrics: bool = False  # /metrics without the key
