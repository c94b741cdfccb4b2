"""Helpers for the browser tests (Debian Chromium through playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[1]


def keep_screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Save a screenshot in the test's tmp dir and copy it to artifacts/ (kept by CI)."""
    shot = tmp_path / name
    # The viewport holds the whole page; animations finished, so an opening block is shown open.
    page.screenshot(path=str(shot), animations="disabled")
    (REPO / "artifacts").mkdir(exist_ok=True)
    shutil.copy(shot, REPO / "artifacts" / name)
    return shot
