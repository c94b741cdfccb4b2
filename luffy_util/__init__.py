"""luffy_util: the few helpers every part shares (one-line errors, package versions, launching processes).

Standard library only: every environment imports it, LUFFY's pinned grading environment (``.venv-exact``) too.
"""
