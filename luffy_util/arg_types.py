"""argparse ``type=`` functions shared by every command line of the project (ports, counts, sampling, paths).

In luffy_util, the bottom layer, because the server, the harness, the trainer and the demo all parse flags with
them (the trainer never imports the server's package). Standard library only, but for the model check's hub-id
rule (huggingface_hub, imported when a flag names no local directory; every environment with a model flag has
it).

Each function takes the flag's text and returns the parsed value, or raises ``argparse.ArgumentTypeError``,
which argparse turns into ``prog: error: argument --flag: <message>`` and exit code 2 before anything loads.
The ``check_*`` helpers take values that are not flags (a config entry) and raise ValueError with the same
message, for CLIs that validate after parsing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Invalid = argparse.ArgumentTypeError


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Invalid(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise Invalid(f"expected a finite number, got {text!r}")
    return value


def _bounded(name: str, parse: Callable[[str], Any], ok: Callable[[Any], bool], message: str,
             doc: str) -> Callable[[str], Any]:
    """A type function: ``parse`` the text, then refuse values that are not ``ok`` with ``message`` (which may
    name ``{value}`` and ``{text}``)."""
    def check(text: str) -> Any:
        value = parse(text)
        if not ok(value):
            raise Invalid(message.format(value=value, text=text))
        return value

    check.__name__, check.__doc__ = name, doc
    return check


positive_int = _bounded("positive_int", _int, lambda v: v >= 1, "must be at least 1, got {value}",
                        "A count that must be at least 1 (samples, tokens, workers, problems).")
non_negative_int = _bounded("non_negative_int", _int, lambda v: v >= 0, "must be 0 or more, got {value}",
                            "A count that may be 0 (retries).")
seed = _bounded("seed", _int, lambda v: 0 <= v < 2**32, f"a seed must be between 0 and {2**32 - 1}, got {{value}}",
                "A random seed: what every seeded library takes (numpy's limit, 0 to 2**32 - 1).")
port = _bounded("port", _int, lambda v: 1 <= v <= 65535, "a port must be between 1 and 65535, got {value}",
                "A TCP port to listen on or connect to: 1 to 65535.")
non_negative_float = _bounded("non_negative_float", _float, lambda v: v >= 0, "must be 0 or more, got {text}",
                              "A finite number >= 0 (temperature).")
positive_float = _bounded("positive_float", _float, lambda v: v > 0, "must be more than 0, got {text}",
                          "A finite number > 0 (timeouts, in seconds).")
probability = _bounded("probability", _float, lambda v: 0 < v <= 1, "must be more than 0 and at most 1, got {text}",
                       "A nucleus mass such as top_p: more than 0 and at most 1.")


def base_url(text: str) -> str:
    """An HTTP(S) endpoint: ``http://host[:port][/path]``; returned without a trailing slash."""
    try:
        parts = urlsplit(text.strip())
        url_port = parts.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError as e:
        raise Invalid(f"not a URL ({e}): {text!r}") from None
    if url_port == 0:
        raise Invalid(f"a port must be between 1 and 65535, got 0 in {text!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected http://HOST[:PORT][/PATH] or https://..., got {text!r}")
    if parts.query or parts.fragment:
        raise Invalid(f"the URL must not carry a query or fragment: {text!r}")
    return text.strip().rstrip("/")


def host(text: str) -> str:
    """An address to listen on: a name or IP, not empty and not a URL."""
    if not text.strip() or "/" in text or " " in text.strip():
        raise Invalid(f"expected a host name or IP address, got {text!r}")
    return text.strip()


def _readable(path: Path, kind: str) -> Path:
    if not os.access(path, os.R_OK | (os.X_OK if kind == "directory" else 0)):
        raise Invalid(f"{path}: permission denied")
    return path


def _existing(text: str, kind: str, is_kind: Callable[[Path], bool]) -> Path:
    """A readable path of this kind ("file" or "directory"), else one line saying what is wrong."""
    path = Path(text).expanduser()
    if not path.exists():
        raise Invalid(f"{text}: no such {kind}")
    if not is_kind(path):
        raise Invalid(f"{text}: not a {kind}")
    return _readable(path, kind)


def existing_file(text: str) -> Path:
    """A readable regular file."""
    return _existing(text, "file", Path.is_file)


def existing_dir(text: str) -> Path:
    """A readable directory."""
    return _existing(text, "directory", Path.is_dir)


def _writable_parent(path: Path, text: str) -> None:
    """The nearest existing ancestor must be a directory this process may create entries in."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise Invalid(f"{text}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise Invalid(f"{text}: cannot create it, {ancestor} is not writable")


def output_dir(text: str) -> Path:
    """A directory to write into: an existing writable directory, or one that can be created."""
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise Invalid(f"{text}: exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise Invalid(f"{text}: directory is not writable")
        return path
    _writable_parent(path, text)
    return path


def output_file(text: str) -> Path:
    """A file to write: not an existing directory, and its directory exists or can be created."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise Invalid(f"{text}: is a directory, expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise Invalid(f"{text}: file is not writable")
    _writable_parent(path, text)
    return path


def model(text: str) -> str:
    """A checkpoint directory (with config.json) or a Hugging Face hub id (``org/name``), checked offline.

    A hub id is checked for form only: whether it exists is known only after a download attempt, which
    takes half a minute of retries without a network; the loader reports that later in one line.
    """
    path = Path(text).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise Invalid(f"{text}: a directory without config.json, not a model checkpoint")
        try:
            if not isinstance(json.loads(config.read_text(encoding="utf-8")), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise Invalid(f"{config}: not a model config ({e})") from None
        return text
    if path.exists():
        raise Invalid(f"{text}: a file, not a model checkpoint directory or a hub id")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text
    try:
        if looks_like_path:
            raise HFValidationError("a path")
        validate_repo_id(text)
    except HFValidationError:
        raise Invalid(f"{text}: no such checkpoint directory, and not a hub id (org/name)") from None
    return text


def check(name: str, value: object, parse: Callable[[str], object]) -> None:
    """Validate a value that did not come from a flag (a config entry): ValueError naming ``name``."""
    try:
        parse(str(value))
    except Invalid as e:
        raise ValueError(f"{name}: {e}") from None
