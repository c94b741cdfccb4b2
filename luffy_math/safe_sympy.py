"""sympy equality of two normalised answers without ever evaluating input as Python.

``sympy.parse_expr`` turns its input into Python code and ``eval``s it with every sympy name and Python
builtin in scope, so a crafted answer such as ``__import__('os').system(...)`` would run. Before parsing, the
text is tokenised and only numbers, the operators of arithmetic, ``!`` and parentheses, and lower-case
names (letters and digits, subscripts such as ``e_1`` or ``a_n``; never a leading, trailing or doubled
underscore) are let through; then it is evaluated in a namespace holding only sympy's mathematical
objects and no builtins. On top of that, LUFFY's own limits apply (at most two unknown letters, no braced or
multi-digit exponents), which keep ``sympy.simplify`` away from inputs that hang it.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from functools import lru_cache
from typing import Any

import sympy
from sympy.parsing import sympy_parser

_ALLOWED_OPERATORS = {"+", "-", "*", "/", "**", "(", ")", ",", "!"}
_HANG_PRONE = ("^{", "^(")
_HANG_PRONE_PATTERNS = (re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"))
_TRANSFORMATIONS = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
# Every name the parser's transformations (standard + implicit multiplication) write into the code it
# evaluates: auto_number (Integer, Float, Rational; I for ``2j``), auto_symbol (Symbol, Function),
# split_symbols (Symbol, Number: ``i5`` becomes ``Symbol('i')*Number('5')``), factorial_notation.
_PARSER_NAMES = ("Integer", "Float", "Rational", "Number", "I", "Symbol", "Function", "factorial", "factorial2")
# A lower-case name, optionally with subscripts: ``x``, ``x2``, ``e_1``, ``a_n``, ``x_1_2``.
_SAFE_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


@lru_cache(maxsize=1)
def _namespace() -> dict[str, Any]:
    """Lower-case sympy functions and constants (what normalised answers can name), and nothing from Python."""
    names: dict[str, Any] = {"__builtins__": {}}
    for name in dir(sympy):
        obj = getattr(sympy, name)
        if name.isalpha() and name.islower() and (
            isinstance(obj, sympy.Basic) or (isinstance(obj, type) and issubclass(obj, sympy.Basic))
        ):
            names[name] = obj
    for name in _PARSER_NAMES:
        names[name] = getattr(sympy, name)
    names.update(sqrt=sympy.sqrt, root=sympy.root, cbrt=sympy.cbrt, abs=sympy.Abs, max=sympy.Max,
                 min=sympy.Min)
    return names


def tokens_are_safe(py_expr: str) -> bool:
    """True when ``py_expr`` is built only from numbers, arithmetic, parentheses and lower-case names."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(py_expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NUMBER:
            continue
        if tok.type == tokenize.NAME:
            word = tok.string
            if not _SAFE_NAME.fullmatch(word) or keyword.iskeyword(word):
                return False
            continue
        if tok.type in (tokenize.OP, tokenize.ERRORTOKEN) and tok.string in _ALLOWED_OPERATORS:
            continue
        return False
    return True


def _unknown_letter_count(expr: str) -> int:
    return len({ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()})


def may_evaluate(expr: str) -> bool:
    """LUFFY's limits on what sympy is given: few unknowns, no exponents that can blow up."""
    if _unknown_letter_count(expr) > 2:
        return False
    if any(bad in expr for bad in _HANG_PRONE):
        return False
    return not any(pattern.search(expr) for pattern in _HANG_PRONE_PATTERNS)


def safe_parse(expr: str) -> sympy.Expr:
    """Parse a normalised answer (``^`` is power) with sympy, refusing anything but arithmetic."""
    py_expr = expr.replace("^", "**")
    if not tokens_are_safe(py_expr):
        raise ValueError(f"not a plain arithmetic expression: {expr[:80]!r}")
    return sympy_parser.parse_expr(py_expr, global_dict=dict(_namespace()), transformations=_TRANSFORMATIONS)


def equal_under_sympy(gold: str, given: str) -> bool:
    """True when sympy simplifies ``(gold) - (given)`` to 0; any failure to parse or simplify is False."""
    expr = f"({gold})-({given})"
    if not may_evaluate(expr):
        return False
    try:
        return sympy.simplify(safe_parse(expr)) == 0
    except Exception:  # sympy raises many kinds of errors on odd input; each just means "not shown equal"
        return False
