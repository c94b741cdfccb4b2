"""Installed package versions: in this interpreter, or in another one (an environment of its own).

    python -m luffy_util.versions PACKAGE...   # prints {"package": "version" | "not installed"} as JSON
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

NOT_INSTALLED = "not installed"
TIMEOUT_S = 60.0  # for the other interpreter to start and answer


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """Package name -> its installed version in this interpreter, or ``NOT_INSTALLED``."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = NOT_INSTALLED
    return found


def versions_in(python: str, packages: Iterable[str]) -> dict[str, str] | None:
    """:func:`installed_versions` as the interpreter ``python`` sees them (asked once per process for each
    interpreter and package list), or None when it did not answer (missing, broken, too slow)."""
    found = _versions_in(str(python), tuple(packages))
    return None if found is None else dict(found)


@functools.lru_cache(maxsize=16)
def _versions_in(python: str, packages: tuple[str, ...]) -> dict[str, str] | None:
    # This very file, run by path in isolated mode (-I: neither its folder nor the user's site on sys.path), so
    # the other interpreter needs no luffy_util of its own.
    try:
        done = subprocess.run([python, "-I", __file__, *packages], capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=True)
        found = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    return {package: str(found.get(package, NOT_INSTALLED)) for package in packages}


if __name__ == "__main__":
    print(json.dumps(installed_versions(sys.argv[1:])))
