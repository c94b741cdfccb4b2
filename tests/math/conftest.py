"""Fixtures for the luffy_math tests: one shared grading pool (worker start-up is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from luffy_math.workers import GradingPool


@pytest.fixture(scope="session")
def grading_pool() -> Iterator[GradingPool]:
    """Two workers, 3 s per item (the kill comes 2 s later)."""
    with GradingPool(workers=2, timeout=3.0) as pool:
        yield pool
