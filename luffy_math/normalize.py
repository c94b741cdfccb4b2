"""String normalisations of LUFFY's (OAT) grader, written from its rules.

Two normalisers, applied to a boxed answer and to the gold:
- :func:`mathd_normalize`: Hendrycks-MATH style (``\\dfrac``→``\\frac``, ``\\left``/``\\right``, units,
  degrees, percent, ``k=``, ``\\sqrt3``, ``\\frac12``, ``a/b``) plus a list of unit words.
- :func:`prm_normalize`: PRM800K style, used before the sympy comparison (``\\text{}``, ``$``, ``%``,
  unit words, LaTeX rendered to text by pylatexenc, mixed numbers, lower case, integer canonical form).
Where the reference swallowed an internal failure and returned the input, these do the same.
"""

from __future__ import annotations

import contextlib
import functools
import re

# Unit words the reference strips when they stand alone (from MathQA); matched as regex fragments, as there.
_UNIT_WORDS = [
    "east", "degree", "mph", "kmph", "ft", "m sqaure", " m east", "sq m", "deg", "mile", "q .", "monkey",
    "prime", "ratio", "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per", "dm", "lt", "gain",
    "ab", "way", "west", "a .", "b .", "c .", "d .", "e .", "f .", "g .", "h .", "t", "a", "h",
    "no change", "men", "soldier", "pie", "bc", "excess", "st", "inches", "noon", "percent", "by", "gal",
    "kmh", "c", "acre", "rise", "a . m", "th", "π r 2", "sq", "mark", "l", "toy", "coin", "sq . m",
    "gallon", "° f", "profit", "minw", "yr", "women", "feet", "am", "pm", "hr", "cu cm", "square",
    "v â € ™", "are", "rupee", "rounds", "cubic", "cc", "mtr", "s", "ohm", "number", "kmph", "day",
    "hour", "minute", "min", "second", "man", "woman", "sec", "cube", "mt", "sq inch", "mp", "∏ cm ³",
    "hectare", "more", "sec", "unit", "cu . m", "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m",
    "cm", "mm", "apple", "liter", "loss", "yard", "pure", "year", "increase", "decrease", "d", "less",
    "Surface", "litre", "pi sq m", "s .", "metre", "meter", "inch",
]
# (literal the text must contain for the pattern to match, or None when the word has regex syntax; pattern)
_UNIT_PATTERNS = [
    (None if re.escape(word) != word.replace(" ", "\\ ") else word, re.compile(r"(^|\W)" + word + r"($|\W)"))
    for word in _UNIT_WORDS + [w + "s" for w in _UNIT_WORDS]
]

_PRM_UNIT_PATTERNS = [
    re.compile(unit + r"(es)?(s)? *(\^[0-9]+)?")
    for unit in ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
                 "month", "year", "foot", "feet", "inch", "yard")
]
_ENCLOSING_TEXT = re.compile(r"^\\text\{(?P<text>.+?)\}$")


class _Unnormalizable(Exception):
    """A shape the Hendrycks rules cannot handle; the caller keeps the input as it was."""


def _brace_fracs(text: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{72}`` → ``\\frac{1}{72}``; gives up (returns input) on ``\\frac`` + 1 char."""
    head, *pieces = text.split("\\frac")
    out = [head]
    for piece in pieces:
        out.append("\\frac")
        if not piece:
            raise _Unnormalizable("bare \\frac")
        if piece.startswith("{"):
            out.append(piece)
            continue
        if len(piece) < 2:
            return text
        numerator, second, rest = piece[0], piece[1], piece[2:]
        if second == "{":
            out.append("{" + numerator + "}" + second + rest)
        else:
            out.append("{" + numerator + "}{" + second + "}" + rest)
    return "".join(out)


def _slash_to_frac(text: str) -> str:
    """``3/4`` (two plain integers) → ``\\frac{3}{4}``."""
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        numerator, denominator = int(parts[0]), int(parts[1])
    except ValueError:
        return text
    if text != f"{numerator}/{denominator}":
        return text
    return "\\frac{" + str(numerator) + "}{" + str(denominator) + "}"


def _drop_right_units(text: str) -> str:
    """Everything after ``\\text{ `` is a unit; more than one such marker is not handled."""
    if "\\text{ " not in text:
        return text
    parts = text.split("\\text{ ")
    if len(parts) != 2:
        raise _Unnormalizable("several \\text{ units")
    return parts[0]


def _brace_sqrt(text: str) -> str:
    """``\\sqrt3`` → ``\\sqrt{3}``; a trailing bare ``\\sqrt`` is not handled."""
    if "\\sqrt" not in text:
        return text
    head, *pieces = text.split("\\sqrt")
    out = [head]
    for piece in pieces:
        if not piece:
            raise _Unnormalizable("bare \\sqrt")
        out.append("\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:]))
    return "".join(out)


def _hendrycks_strip(text: str) -> str:
    text = text.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", text)
    text = re.sub(r"\\end\{array\}", r"\\end{pmatrix}", text)
    text = text.replace("bmatrix", "pmatrix")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    text = text.replace("\\left", "").replace("\\right", "")
    without_text_unit = re.sub(r"\\text{.*?}$", "", text).strip()
    if without_text_unit not in ("", text):
        text = without_text_unit
    for _ in range(2):
        for literal, pattern in _UNIT_PATTERNS:
            if literal is not None and literal not in text:
                continue  # cannot match: skip the regex (this loop dominates the cost of grading)
            stripped = pattern.sub(r"\1\2", text)
            if stripped:
                text = stripped
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "")
    text = _drop_right_units(text)
    text = text.replace("\\%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = _brace_sqrt(text)
    text = text.replace(" ", "")
    text = _brace_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_to_frac(text)


@functools.lru_cache(maxsize=8192)
def mathd_normalize(answer: str) -> str:
    """Hendrycks-MATH normal form used for LUFFY's first (string) comparison."""
    answer = answer.strip()
    match = _ENCLOSING_TEXT.search(answer)
    if match is not None:
        answer = match.group("text").strip()
    try:
        return _hendrycks_strip(answer)
    except _Unnormalizable:
        return answer


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_whole(value: float) -> bool:
    try:
        return abs(value - int(round(value))) <= 1e-7
    except (OverflowError, ValueError):
        return False


_THOUSANDS_COMMA = re.compile(r"(\d)(,)(\d\d\d)($|\D)")


def strip_thousands_commas(expr: str) -> str:
    """``1,000,000`` → ``1000000`` while keeping tuple commas such as ``(1,2)``."""
    while True:
        stripped = _THOUSANDS_COMMA.sub(r"\1\3\4", expr)
        if stripped == expr:
            return expr
        expr = stripped


def str_is_int(text: str) -> bool:
    """True for strings that read as a whole number (``"7"``, ``"7.0"``, ``"1,000"``)."""
    try:
        return _is_whole(float(strip_thousands_commas(text)))
    except ValueError:
        return False


def _latex_to_text(expr: str) -> str:
    """Render LaTeX as plain text with pylatexenc, in the spellings sympy's parser reads."""
    from pylatexenc.latex2text import LatexNodes2Text

    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    expr = LatexNodes2Text().latex_to_text(expr)
    for symbol, spelled in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        expr = expr.replace(symbol, spelled)
    return expr.strip()


@functools.lru_cache(maxsize=8192)
def prm_normalize(expr: str) -> str:
    """PRM800K normal form used for LUFFY's sympy comparison (and its normalised string equality)."""
    match = _ENCLOSING_TEXT.search(expr)
    if match is not None:
        expr = match.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for pattern in _PRM_UNIT_PATTERNS:
        expr = pattern.sub("", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if expr[:1] == "{" and expr[-1:] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    if _is_float(expr) and _is_whole(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        with contextlib.suppress(Exception):  # malformed LaTeX keeps its raw text, as in the reference
            expr = _latex_to_text(expr)
    expr = re.sub("- *", "-", expr)
    expr = re.sub("([0-9]) +([0-9])", r"\1+\2", expr)  # mixed numbers: "7 3/4" -> "7+3/4"
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if str_is_int(expr):
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def split_tuple(expr: str) -> list[str]:
    """Elements of ``(a,b)`` / ``[a,b)`` (no nested brackets), else ``[expr]``; ``[]`` for an empty string."""
    expr = strip_thousands_commas(expr)
    if not expr:
        return []
    brackets = "()[]"
    if len(expr) > 2 and expr[0] in brackets and expr[-1] in brackets and not any(
        ch in expr[1:-1] for ch in brackets
    ):
        return [elem.strip() for elem in expr[1:-1].split(",")]
    return [expr]


def is_plain_fraction(expr: str) -> bool:
    """``3/4``-like strings, compared literally so that unreduced fractions do not pass."""
    return re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", expr) is not None
