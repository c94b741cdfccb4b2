"""luffy_util: the few helpers every part shares (one-line errors, package versions, launching processes,
argparse types).

Standard library only: every environment imports it, LUFFY's pinned grading environment (``.venv-exact``) too
(``arg_types`` asks huggingface_hub for the hub-id rule, only when a model flag is checked).
"""
