"""One-line errors: what a CLI prints after ``error:`` and what an API puts in its message."""

from __future__ import annotations

LIMIT = 300  # characters: a message longer than this is cut


def first_line(error: BaseException | str | None, limit: int | None = LIMIT, *, last_of_traceback: bool = False,
               fallback: str | None = None) -> str:
    """The first non-blank line of ``error`` (an exception or its text), stripped and cut to ``limit`` characters.

    Never empty: a message that is empty or only white space gives ``fallback``, else the exception's type
    name (``"Error"`` for text). ``last_of_traceback``: when the text holds a ``Traceback``, as an exception
    that Ray or a subprocess passed on does, its last line (the error that started it all) is the one taken.
    """
    text = error if isinstance(error, str) else "" if error is None else _text(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        line = fallback or (type(error).__name__ if isinstance(error, BaseException) else "Error")
    elif last_of_traceback and "Traceback" in text:
        line = lines[-1]
    else:
        line = lines[0]
    return line if limit is None else line[:limit]


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not hide the error it describes
        return ""
