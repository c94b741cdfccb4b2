"""The trainer's one error for a wrong config: raised by ``config`` (names, overrides, the recipe's checks) and
``verl_support`` (the verl version guard), and printed by the CLI as one line."""

from __future__ import annotations


class ConfigError(ValueError):
    """The config name or an override is wrong; the message says which."""
