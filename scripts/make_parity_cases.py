"""Build answer variants of the benchmark golds for the LUFFY-grader parity suite.

Reads the unique ground truths of ``valid.all.parquet`` and writes, for each of a set of answer
shapes (a ``class``), full model responses whose boxed answer is a rewriting of a gold: equivalent
forms that a grader should accept and near misses that it should reject.  The labels are not made
here: they come from running LUFFY's own grader on these cases, outside this repository.  A few
shapes the benchmark has too few of (complex numbers, sets, matrices, ...) get golds made up here.

    python scripts/make_parity_cases.py --parquet ../shared/benchmarks/luffy/valid.all.parquet --out cases.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import pandas as pd

SEED = 20250
CAP = 240  # cases per class at most
CAPS = {"gold_exact": 600}

Pair = tuple[str, str]  # (boxed answer or full response, gold)

TEMPLATES = [
    "So the answer is $\\boxed{ANS}$.",
    "Therefore, the final answer is $\\boxed{ANS}$",
    "Putting everything together, we get \\boxed{ANS}.",
    "We conclude that the answer is \\(\\boxed{ANS}\\).",
    "**Final Answer**\n\\[\n\\boxed{ANS}\n\\]",
    "Let me double-check the computation... it holds.\n\nThe answer is: $\\boxed{ANS}$",
]

NAMES = ["Evelyn", "Navin", "Alice", "Bob", "Carmen", "Diego", "Fatima", "Hiroshi", "Ines", "Jamal"]
WORDS = ["east", "even", "ellipse", "odd", "north", "parabola", "never", "always", "yes", "no"]


def box(answer: str) -> str:
    return "\\boxed{" + answer + "}"


# --- gold helpers ---------------------------------------------------------------------------------


def core(gold: str) -> str:
    """The gold without math delimiters, a leading \\quad or a trailing period."""
    text = gold.strip().replace("$", "")
    text = re.sub(r"^\\quad\s*", "", text)
    return text.rstrip(".").strip()


INT = re.compile(r"^-?\d+$")
DEC = re.compile(r"^-?\d*\.\d+$")
FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
SHORT_FRAC = re.compile(r"^(-?)\\[dt]?frac(\d)(\d)$")
SLASH = re.compile(r"^(-?)(\d+)/(\d+)$")
SCI = re.compile(r"^(-?\d+(?:\.\d+)?)e(-?\d+)$")


def value(text: str) -> Fraction | None:
    """The exact value of a plain number: an integer, a decimal, a simple fraction or 1.2e3."""
    text = text.strip()
    if INT.match(text) or DEC.match(text):
        return Fraction(text)
    for pattern in (FRAC, SHORT_FRAC, SLASH):
        m = pattern.match(text)
        if m and int(m.group(3)) != 0:
            sign = -1 if m.group(1) else 1
            return sign * Fraction(int(m.group(2)), int(m.group(3)))
    m = SCI.match(text)
    if m:
        return Fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    return None


def decimal(x: Fraction, digits: int) -> str:
    """x rounded to `digits` decimals, trailing zeros kept."""
    return f"{float(x):.{digits}f}"


def exact_decimal(x: Fraction) -> str | None:
    """The terminating decimal expansion of x, if it has one of at most 8 digits."""
    for digits in range(0, 9):
        scaled = x * 10**digits
        if scaled.denominator == 1:
            text = f"{abs(scaled.numerator):0{digits + 1}d}"
            body = text if digits == 0 else text[:-digits] + "." + text[-digits:]
            return ("-" if x < 0 else "") + body
    return None


def latex_frac(x: Fraction, command: str = "\\frac") -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}{command}{{{abs(x.numerator)}}}{{{x.denominator}}}"


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split text on sep outside (), [], {} and \\left/\\right pairs."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def number_golds(golds: list[str]) -> list[str]:
    return [g for g in golds if INT.match(core(g)) or DEC.match(core(g))]


def wrong_number(text: str, rng: random.Random) -> str:
    """A different number of the same shape."""
    x = value(text)
    if x is None:
        return text + "1"
    if x.denominator == 1:
        return str(x.numerator + rng.choice([-2, -1, 1, 2, 10]))
    return exact_decimal(x + Fraction(1, 10)) or latex_frac(x + 1)


def flip_signs(text: str) -> str:
    """Swap + and - everywhere (a sign error in every term)."""
    return text.replace("+", "\0").replace("-", "+").replace("\0", "-")


def negate(text: str) -> str:
    return text[1:].lstrip() if text.startswith("-") else "-" + text


# --- the classes ----------------------------------------------------------------------------------


def gen_gold_exact(golds: list[str], rng: random.Random) -> list[Pair]:
    return [(box(g), g) for g in golds]


def gen_spacing_dollar(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        out.append((box(c), g))
        out.append((box(c.replace(" ", "")), g))
        out.append((box(re.sub(r"\s*([+=,<>]|\\cup)\s*", r" \1 ", c)), g))
        out.append((box("$" + c + "$"), g))
        out.append(("$" + box(c) + "$", g))
        out.append((box(" " + c + " "), g))
        out.append((box(c.replace(",", ", ")), g))
        if INT.match(c) and len(c.lstrip("-")) >= 2:
            digits = c.lstrip("-")
            out.append((box(c[: len(c) - len(digits)] + digits[0] + " " + digits[1:]), g))  # 1 2 for 12
        if "\\frac" in c:
            out.append((box(c.replace("\\frac", "\\frac ")), g))
    return out


def gen_frac_forms(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if "frac" not in c and not SLASH.match(c):
            continue
        out.append((box(c.replace("\\frac", "\\dfrac")), g))
        out.append((box(c.replace("\\frac", "\\tfrac")), g))
        out.append((box(c.replace("\\dfrac", "\\frac")), g))
        x = value(c)
        if x is None or x.denominator == 1:
            continue
        n, d, s = abs(x.numerator), x.denominator, "-" if x < 0 else ""
        out.append((box(f"{s}{n}/{d}"), g))
        out.append((box(f"{s}{{{n}}}/{{{d}}}"), g))
        out.append((box(f"{s}({n})/({d})"), g))
        out.append((box(f"\\frac{{{s}{n}}}{{{d}}}"), g))
        out.append((box(f"\\frac{{{n}}}{{{'-' if s else ''}{d}}}"), g))
        if n < 10 and d < 10:
            out.append((box(f"{s}\\frac{n}{d}"), g))
        out.append((box(f"{s}\\frac{{{2 * n}}}{{{2 * d}}}"), g))  # not reduced
        out.append((box(f"{s}{2 * n}/{2 * d}"), g))
        out.append((box(f"{s}\\frac{{{d}}}{{{n}}}"), g))  # inverted
        out.append((box(f"{s}\\frac{{{n}}}{{{d + 1}}}"), g))
    return out


def gen_decimal_fraction(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        x = value(c)
        if x is None or SCI.match(c):
            continue
        if x.denominator != 1 and "frac" in c or SLASH.match(c):
            exact = exact_decimal(x)
            if exact:
                out.append((box(exact), g))
                out.append((box(exact + "0"), g))
            for digits in (2, 3, 4, 6):
                out.append((box(decimal(x, digits)), g))
            out.append((box(str(float(x))), g))
        elif DEC.match(c):
            f = Fraction(c)
            out.append((box(latex_frac(f)), g))
            out.append((box(f"{f.numerator}/{f.denominator}"), g))
            out.append((box(c + "0"), g))
            if c.startswith("0."):
                out.append((box(c[1:]), g))
            elif c.startswith("."):
                out.append((box("0" + c), g))
            approx = f.limit_denominator(max(2, f.denominator // 7))
            if approx != f:
                out.append((box(latex_frac(approx)), g))
    return out


def gen_integer_forms(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if not INT.match(c) and not re.match(r"^-?\d+\.0+$", c):
            continue
        n = int(float(c))
        for text in (f"{n}.0", f"{n}.00", f"+{n}", f"{n}/1", f"\\frac{{{2 * n}}}{{2}}", f"{n}.01",
                     f"{n}.0001", f"{n}.0000001", f"{n}.5", f"{n - 1}.9999999", str(n), f"{n}\\cdot 1",
                     f"{n}.", f"0{n}" if n >= 0 else f"-0{-n}"):
            out.append((box(text), g))
    return out


def gen_sign_error(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 40:
            continue
        out.append((box(negate(c)), g))
        out.append((box("-(" + c + ")"), g))
        out.append((box("- " + c), g))
        if c.startswith("-"):
            out.append((box("-" + c), g))  # --x
            out.append((box("(-1)\\cdot " + c[1:].lstrip()), g))
        else:
            out.append((box("+" + c), g))
        if re.search(r"[^\s(^{][+-]", c):
            out.append((box(flip_signs(c)), g))
            first = re.search(r"(?<=[^\s(^{])\s*[+-]", c)
            if first:
                i = first.end() - 1
                out.append((box(c[:i] + ("-" if c[i] == "+" else "+") + c[i + 1 :]), g))
    return out


def gen_near_miss(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in number_golds(golds):
        c = core(g)
        x = Fraction(c)
        if INT.match(c):
            n = int(c)
            for m in (n + 1, n - 1, n * 10, n + 100, int(str(abs(n))[::-1]) * (1 if n >= 0 else -1)):
                if m != n:
                    out.append((box(str(m)), g))
            out.append((box(c + "0"), g))
            out.append((box(f"{n}.4"), g))
            out.append((box(f"{n - 1}.6"), g))
        else:
            digits = len(c.split(".")[1])
            step = Fraction(1, 10**digits)
            for y in (x - step, x + step, x - step / 10, x + step / 10):
                out.append((box(decimal(y, digits + (0 if y in (x - step, x + step) else 1))), g))
            out.append((box(decimal(x, digits + 1)), g))
            out.append((box(decimal(x, max(0, digits - 1))), g))
            out.append((box(str(float(x) * (1 + 1e-7))), g))
            out.append((box(str(float(x) * (1 + 1e-5))), g))
            out.append((box(str(float(x) * (1 + 1e-3))), g))
    return out


def gen_multi_box(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 40:
            continue
        w = wrong_number(c, rng) if value(c) is not None else rng.choice(golds)
        w = core(w)
        if w == c:
            continue
        out.append((f"First I got {box(w)}, but that is wrong; the answer is {box(c)}.", g))
        out.append((f"The answer is {box(c)}. Hmm, let me recheck: it should be {box(w)}.", g))
        out.append((f"{box(c)} and again {box(c)}", g))
        out.append((f"So we get {box(w)} wait no {box(c)}", g))
        out.append((f"So we get {box(c)} wait no {box(w)}", g))
        out.append((f"The answers are {box(c)}, {box(w)}.", g))
        out.append((f"{box(c)}{box(w)}", g))
        out.append((f"$\\boxed{{{c}}} = \\boxed{{{c}}}$", g))
        out.append((box(c + ", " + w), g))
    return out


def gen_unclosed_empty(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 40:
            continue
        out.append(("The answer is $\\boxed{" + c + "$.", g))
        out.append(("The answer is \\boxed{" + c, g))
        out.append(("The answer is $\\boxed{}$.", g))
        out.append(("The answer is $\\boxed{ }$.", g))
        out.append((f"It is {box(c)}, i.e. \\boxed{{", g))
        out.append((f"The answer is {c}.", g))
        out.append((f"The answer is \\boxed {c}.", g))
        out.append(("The answer is \\boxed{{" + c + "}.", g))
        out.append((f"{box(c)} and then \\boxed{{}}", g))
    return out


def gen_fbox(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 40:
            continue
        w = core(rng.choice(golds))
        out.append((f"The answer is $\\fbox{{{c}}}$.", g))
        out.append((f"The answer is \\framebox{{{c}}}.", g))
        out.append((f"Thus {box(c)}, and the other value is \\fbox{{{w}}}.", g))
        out.append((f"At first \\fbox{{{w}}}; finally {box(c)}.", g))
        out.append((f"The answer is \\fbox{{{c}}} and \\fbox{{{w}}}.", g))
        out.append((box("\\fbox{" + c + "}"), g))
    return out


def gen_nested_braces(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        out.append((box("{" + c + "}"), g))
        out.append((box("{{" + c + "}}"), g))
        out.append((box(box(c)), g))
        out.append(("The answer is " + box(c) + "}.", g))
        out.append((box("{" + c + "}" + "{}"), g))
        if "\\frac{" in c:
            out.append((box(re.sub(r"\{(\d+)\}", r"{{\1}}", c)), g))
        if re.match(r"^\(.*\)$", c):
            out.append((box("\\left\\{" + c[1:-1] + "\\right\\}"), g))
    return out


UNITS = ["\\text{ cm}", "\\text{cm}", " cm", " m", "\\mbox{ cm}", "\\text{ meters}", "\\mathrm{~cm}",
         "\\text{ cm}^2", "\\,\\text{kg}", "\\text{ units}", "\\text{ dollars}", "\\text{ inches}", " \\text{hours}",
         " s", "\\text{ apples}", " \\mathrm{m/s}", "\\ \\text{km}"]


def gen_units(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in number_golds(golds):
        c = core(g)
        for unit in rng.sample(UNITS, 7):
            out.append((box(c + unit), g))
        out.append((box(wrong_number(c, rng) + rng.choice(UNITS)), g))
    for g in golds:
        c = core(g)
        m = re.match(r"^(-?[\d.]+)\s*\\(?:text|mbox)\{\s*([a-z ]+)\}(\^\d)?$", c)
        if m:
            out.append((box(m.group(1)), g))
            out.append((box(m.group(1) + " " + m.group(2).strip() + (m.group(3) or "")), g))
            out.append((box(m.group(1) + "\\text{ " + m.group(2).strip() + "}"), g))
            out.append((box(wrong_number(m.group(1), rng) + "\\mbox{ " + m.group(2).strip() + "}"), g))
    return out


def gen_degrees(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        m = re.match(r"^([\d.]+)\s*\^\s*\{?\\circ\}?$", c)
        if m:
            n = m.group(1)
            for text in (n, f"{n}^\\circ", f"{n}^{{\\circ}}", f"{n}°", f"{n} \\text{{ degrees}}", f"{n} degrees",
                         f"{n}^\\circ C", f"{wrong_number(n, rng)}^\\circ", f"\\frac{{{n}\\pi}}{{180}}"):
                out.append((box(text), g))
    for g in golds:
        c = core(g)
        if INT.match(c) and 0 < int(c) <= 360:
            for text in (f"{c}^\\circ", f"{c}^{{\\circ}}", f"{c}°", f"{c}\\text{{ degrees}}", f"{c} \\text{{°}}",
                         f"{c}^{{\\circ}} F", f"{int(c) + 1}^\\circ", f"{c}^{{\\circ\\circ}}"):
                out.append((box(text), g))
    return out


def gen_percent(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    numbers = [core(g) for g in number_golds(golds) if not core(g).startswith("-")]
    percent_golds = [g for g in golds if "%" in g] + [n + "\\%" for n in numbers[:60]]
    for g in percent_golds:
        k = re.sub(r"\s*\\?%$", "", core(g))
        x = value(k)
        if x is None:
            continue
        frac = exact_decimal(x / 100) or decimal(x / 100, 4)
        for text in (f"{k}\\%", f"{k}%", f"{k} \\text{{ percent}}", f"{k}\\text{{\\%}}", f"{k} \\%", k, frac,
                     f"\\frac{{{k}}}{{100}}", f"{wrong_number(k, rng)}\\%", f"{k}\\text{{ per cent}}"):
            out.append((box(text), g))
    for n in numbers[60:140]:
        out.append((box(n + "\\%"), n))
        out.append((box(n + "%"), n))
    return out


def group_thousands(n: int, sep: str) -> str:
    return f"{n:,}".replace(",", sep)


def gen_thousands(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if INT.match(c) and abs(int(c)) >= 1000:
            n = int(c)
            for sep in (",", "{,}", "\\,", ",\\!", "\\ ", " ", "."):
                out.append((box(group_thousands(n, sep)), g))
            out.append((box(f"{n:,}"[:-1]), g))  # 1,00 for 1,000
            out.append((box(group_thousands(n + 1000, ",")), g))
        elif DEC.match(c):
            out.append((box(c.replace(".", ",")), g))
            out.append((box(c.replace(".", "{,}")), g))
        elif re.match(r"^(\\\$)?\d{1,3}(,(\\!)?\s*\d{3})+$", c):
            plain = re.sub(r",\\!\s*|,", "", c.replace("\\$", ""))
            for text in (plain, c.replace("\\!", ""), c.replace(",\\!", "{,}").replace(" ", ""), plain + "0"):
                out.append((box(text), g))
    return out


def gen_sci_notation(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        m = SCI.match(c)
        if m:
            a, e = m.group(1), int(m.group(2))
            shifted = exact_decimal(Fraction(a) * 10) or a
            for text in (f"{a}\\times10^{{{e}}}", f"{a} \\times 10^{{{e}}}", f"{a}\\cdot10^{{{e}}}",
                         f"{a} \\cdot 10^{e}", f"{a}e{e}", f"{a}E{e}", f"{a}*10^{e}", f"{a}\\times 10^{{{e + 1}}}",
                         f"{shifted}\\times10^{{{e - 1}}}", f"{a} \\times 10^{{{-e}}}", f"{a}x10^{{{e}}}"):
                out.append((box(text), g))
            if 0 <= e <= 8:
                out.append((box(exact_decimal(Fraction(a) * 10**e) or a), g))
        elif INT.match(c) and abs(int(c)) >= 1000:
            n = int(c)
            e = len(str(abs(n))) - 1
            mant = exact_decimal(Fraction(n, 10**e)) or str(n)
            for text in (f"{mant}\\times10^{{{e}}}", f"{mant}e{e}", f"{mant} \\cdot 10^{e}",
                         f"{mant}\\times10^{{{e + 1}}}"):
                out.append((box(text), g))
    return out


def synthetic_intervals(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        a, b = sorted(rng.sample(range(-20, 30), 2))
        kind = rng.randrange(6)
        if kind == 0:
            out.append(f"({a},{b})")
        elif kind == 1:
            out.append(f"[{a},{b}]")
        elif kind == 2:
            out.append(f"({a},{b}]")
        elif kind == 3:
            out.append(f"(-\\infty,{a})")
        elif kind == 4:
            out.append(f"[{b},\\infty)")
        else:
            out.append(f"(-\\infty,{a}) \\cup ({b},\\infty)")
    return out


def gen_interval(golds: list[str], rng: random.Random) -> list[Pair]:
    real = [g for g in golds if re.search(r"infty|\\cup|^\$?\[|\]\$?$", core(g)) and "frac{2 \\pi" not in g]
    real = [g for g in real if not re.search(r"\\left\[P|\\sqrt\[", g)]
    out = []
    for g in real + synthetic_intervals(rng, 60):
        c = core(g)
        ends = {"(": "[", "[": "(", ")": "]", "]": ")"}
        if c and c[0] in ends and c[-1] in ends:
            out.append((box(ends[c[0]] + c[1:]), g))
            out.append((box(c[:-1] + ends[c[-1]]), g))
            out.append((box(ends[c[0]] + c[1:-1] + ends[c[-1]]), g))
            out.append((box("\\left" + c[0] + " " + c[1:-1] + " \\right" + c[-1]), g))
            out.append((box("x \\in " + c), g))
        if "\\cup" in c:
            parts = [p.strip() for p in c.split("\\cup")]
            out.append((box(" \\cup ".join(reversed(parts))), g))
            out.append((box(" U ".join(parts)), g))
            out.append((box(parts[0]), g))
        out.append((box(c.replace("\\infty", "+\\infty") if "(-" not in c else c.replace(",\\infty", ", +\\infty")), g))
        out.append((box(c.replace(",", ", ")), g))
        m = re.match(r"^([(\[])(-?\d+),\s*(-?\d+)([)\]])$", c)
        if m:
            lo, hi = m.group(2), m.group(3)
            lt = "<" if m.group(1) == "(" else "\\le"
            gt = "<" if m.group(4) == ")" else "\\le"
            out.append((box(f"{lo} {lt} x {gt} {hi}"), g))
            out.append((box(f"{m.group(1)}{hi},{lo}{m.group(4)}"), g))
        if c.startswith("x \\in"):
            out.append((box(c.replace("x \\in", "").strip()), g))
    return out


def synthetic_tuples(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        size = rng.choice([2, 2, 3])
        items = [str(rng.randint(-15, 25)) for _ in range(size)]
        if rng.random() < 0.3:
            items[rng.randrange(size)] = f"\\frac{{{rng.randint(1, 9)}}}{{{rng.randint(2, 9)}}}"
        out.append("(" + ", ".join(items) + ")")
    return out


def gen_tuple(golds: list[str], rng: random.Random) -> list[Pair]:
    real = [g for g in golds if re.match(r"^(\\left)?\(.*(\\right)?\)$", core(g)) and "," in g
            and "),(" not in core(g).replace(" ", "") and "\\cup" not in g]
    out = []
    for g in real + synthetic_tuples(rng, 50):
        c = core(g)
        inner = re.sub(r"^(\\left)?\(|(\\right)?\)$", "", c).strip()
        items = split_top(inner)
        if len(items) < 2:
            continue
        out.append((box("(" + ", ".join(reversed(items)) + ")"), g))
        out.append((box("( " + " , ".join(items) + " )"), g))
        out.append((box("\\left( " + ", ".join(items) + " \\right)"), g))
        out.append((box("[" + ",".join(items) + "]"), g))
        out.append((box(",".join(items)), g))
        out.append((box("(x, y) = (" + ",".join(items) + ")" if len(items) == 2 else "(" + ";".join(items) + ")"), g))
        out.append((box(", ".join(f"{v} = {it}" for v, it in zip("xyzw", items, strict=False))), g))
        out.append((box("(" + ",".join(items[:-1]) + ")"), g))
        wrong = items[:]
        wrong[-1] = negate(wrong[-1])
        out.append((box("(" + ",".join(wrong) + ")"), g))
        out.append((box("\\{" + ",".join(items) + "\\}"), g))
    return out


def gen_set(golds: list[str], rng: random.Random) -> list[Pair]:
    sets = [g for g in golds if "\\{" in g and "\\cup" not in g]
    for _ in range(45):
        items = [str(x) for x in sorted(rng.sample(range(-10, 20), rng.choice([2, 3, 4])))]
        sets.append("\\{" + ", ".join(items) + "\\}")
    out = []
    for g in sets:
        c = core(g)
        items = split_top(c[2:-2])
        out.append((box("\\{" + ", ".join(reversed(items)) + "\\}"), g))
        out.append((box(", ".join(items)), g))
        out.append((box("\\left\\{ " + ", ".join(items) + " \\right\\}"), g))
        out.append((box("{" + ",".join(items) + "}"), g))
        out.append((box("\\{" + ",".join(items + items[:1]) + "\\}"), g))
        out.append((box("\\{" + ",".join(items[:-1]) + "\\}"), g))
        out.append((box("x \\in \\{" + ",".join(items) + "\\}"), g))
        out.append((box(", ".join(items[:-1]) + " \\text{ and } " + items[-1]), g))
        out.append((box("(" + ",".join(items) + ")"), g))
        out.append((box("\\{" + ",".join(items[:-1] + [wrong_number(items[-1], rng)]) + "\\}"), g))
    return out


def synthetic_matrices(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        rows, cols = rng.choice([(2, 1), (3, 1), (2, 2), (1, 3)])
        cells = [[str(rng.randint(-9, 12)) for _ in range(cols)] for _ in range(rows)]
        if rng.random() < 0.3:
            x = Fraction(rng.randint(1, 9), rng.randint(2, 9))
            cells[0][0] = str(x) if x.denominator > 1 else f"{x.numerator + 1}/{x.numerator}"
        env = rng.choice(["pmatrix", "bmatrix"])
        body = " \\\\ ".join(" & ".join(r) for r in cells)
        out.append(f"\\begin{{{env}}} {body} \\end{{{env}}}")
    return out


def gen_matrix(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in [g for g in golds if "matrix" in g] + synthetic_matrices(rng, 40):
        c = core(g)
        m = re.match(r"^\\begin\{(\w+)\}(.*)\\end\{\w+\}$", c)
        if not m:
            continue
        env, body = m.group(1), m.group(2)
        rows = [[cell.strip() for cell in r.split("&")] for r in body.split("\\\\")]
        other = "bmatrix" if env == "pmatrix" else "pmatrix"

        def make(cells: list[list[str]], name: str = env) -> str:
            return f"\\begin{{{name}}} " + " \\\\ ".join(" & ".join(r) for r in cells) + f" \\end{{{name}}}"

        fracs = [[re.sub(r"^(-?)(\d+)/(\d+)$", r"\1\\frac{\2}{\3}", x) for x in r] for r in rows]
        transposed = [list(col) for col in zip(*rows, strict=True)]
        wrong = [r[:] for r in rows]
        wrong[-1][-1] = negate(wrong[-1][-1])
        flat = [x for r in rows for x in r]
        for text in (make(rows, other), make(fracs), make(rows).replace(" ", ""), make(transposed),
                     "(" + ", ".join(flat) + ")", make(wrong),
                     "\\left(\\begin{array}{" + "c" * len(rows[0]) + "} " + " \\\\ ".join(" & ".join(r) for r in rows)
                     + " \\end{array}\\right)", make([[negate(x) for x in r] for r in rows]),
                     make([[x for x in r] for r in rows], "matrix")):
            out.append((box(text), g))
        decimals = [[exact_decimal(value(x)) or x if value(x) is not None else x for x in r] for r in rows]
        if decimals != rows:
            out.append((box(make(decimals)), g))
    return out


def gen_text_wrap(golds: list[str], rng: random.Random) -> list[Pair]:
    words = [g for g in golds if re.match(r"^\\text\{[A-Za-z]+\}$", g)]
    words += [f"\\text{{{w}}}" for w in NAMES + WORDS if f"\\text{{{w}}}" not in words]
    out = []
    for g in words:
        w = g[6:-1]
        other = rng.choice([x for x in NAMES + WORDS if x != w])
        for text in (w, g, f"\\textbf{{{w}}}", f"\\mathrm{{{w}}}", f"\\textit{{{w}}}", w.lower(), w.upper(),
                     f"\\text{{ {w} }}", f"\\text{{{w}.}}", f"\\text{{{other}}}", f"\\text{{{w} and {other}}}",
                     f"\\text{{{w}}}\\text{{}}", f"\\mbox{{{w}}}"):
            out.append((box(text), g))
    for g in number_golds(golds)[:40]:
        c = core(g)
        for text in (f"\\text{{{c}}}", f"\\textbf{{{c}}}", f"\\mathbf{{{c}}}", f"\\mathrm{{{c}}}"):
            out.append((box(text), g))
    return out


def gen_choice_letter(golds: list[str], rng: random.Random) -> list[Pair]:
    letters = "ABCDE"
    out = []
    choice_golds = [g for g in golds if re.match(r"^\\text\{\([A-E]\)\}$", g)]
    choice_golds += [f"\\text{{({x})}}" for x in letters if f"\\text{{({x})}}" not in choice_golds]
    choice_golds += [x for x in letters] + [f"({x})" for x in letters]
    for g in choice_golds:
        x = re.search(r"[A-E]", g).group(0)
        y = letters[(letters.index(x) + 1) % 5]
        for text in (x, f"({x})", f"\\text{{({x})}}", f"\\textbf{{({x})}}", f"\\text{{{x}}}", f"\\mathrm{{({x})}}",
                     f"{x})", x.lower(), f"\\text{{({y})}}", f"({y})", f"\\textbf{{({x}) }}42", f"\\text{{Option {x}}}"):
            out.append((box(text), g))
    return out


def gen_equation(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    eqs = [g for g in golds if "=" in g and len(core(g)) < 40 and "," not in g]
    for g in eqs + ["x=5", "k=1", "f(x)=2x", "y = 2x + 3", "a=-3"]:
        c = core(g)
        lhs, rhs = (s.strip() for s in c.split("=", 1))
        for text in (c, c.replace(" ", ""), f"{lhs} = {rhs}", f"{rhs} = {lhs}", rhs, f"-{lhs}={rhs}",
                     f"2{lhs}=2{rhs}" if re.match(r"^[a-z\\]", rhs) and not re.search(r"[+-]", rhs) else f"2{lhs}=2({rhs})",
                     f"{lhs}={negate(rhs)}", f"{lhs.upper()}={rhs}", f"{lhs} \\equiv {rhs}", f"{lhs}:={rhs}"):
            out.append((box(text), g))
    for g in number_golds(golds)[:80]:
        c = core(g)
        var = rng.choice(["x", "n", "k", "a", "t"])
        for text in (f"{var} = {c}", f"{c} = {var}", f"{var}={wrong_number(c, rng)}", f"{var} \\approx {c}",
                     f"{var}^2 = {c}"):
            out.append((box(text), g))
    return out


def complex_text(a: int, b: int) -> str:
    if b == 0:
        return str(a)
    bs = "" if abs(b) == 1 else str(abs(b))
    return f"{a} {'+' if b > 0 else '-'} {bs}i"


def gen_complex(golds: list[str], rng: random.Random) -> list[Pair]:
    pairs: list[tuple[str, int, int]] = []
    for g in golds:
        m = re.match(r"^(-?\d+)\s*([+-])\s*(\d*)i$", core(g))
        if m:
            b = int(m.group(3) or 1) * (1 if m.group(2) == "+" else -1)
            pairs.append((g, int(m.group(1)), b))
    for _ in range(40):
        a, b = rng.randint(-12, 12), rng.choice([x for x in range(-9, 10) if x])
        pairs.append((complex_text(a, b), a, b))
    out = []
    for g, a, b in pairs:
        sb, ab = ("+" if b > 0 else "-"), abs(b)
        abs_ = "" if ab == 1 else str(ab)
        for text in (f"{a}{sb}{abs_}i", f"{a} {sb} i {ab}", f"{b}i+{a}" if b != 1 else f"i+{a}",
                     f"{sb if sb == '-' else ''}{abs_}i {'+' if a >= 0 else '-'} {abs(a)}",
                     f"{sb if sb == '-' else ''}i{ab} + {a}", f"({a}{sb}{abs_}i)", f"{a}{sb}{abs_}\\mathrm{{i}}",
                     f"{a}{sb}{abs_}j", f"{a}{'-' if b > 0 else '+'}{abs_}i", f"{b}{'+' if a >= 0 else '-'}{abs(a)}i",
                     f"{a}{sb}{abs_} \\cdot i", f"{a}+({b})i", f"{a}{sb}{abs_}\\,i"):
            out.append((box(text), g))
    return out


def gen_subscript(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    synth = ["E_{1}+E_{2}", "x_0", "x_{0}", "a_{n}", "v_{0} t", "F_1 + F_2 + F_3", "2 R_{1}", "T_{1} - T_{2}",
             "\\frac{m_1}{m_2}", "a_{1} a_{2}", "p_{0} V_{0}", "x_{1}+x_{2}"]
    for g in synth:
        terms = split_top(g, "+")
        variants = [g, re.sub(r"_\{(\w+)\}", r"_\1", g), re.sub(r"_(\w)(?!\})", r"_{\1}", g), g.replace("_", ""),
                    g.replace("_{", "_{(").replace("}", ")}") if "_{" in g else g + "_1",
                    re.sub(r"(\d)(?=\}|\b)", lambda m: str(int(m.group(1)) + 1), g, count=1), g.replace(" ", "")]
        if len(terms) > 1:
            variants.append(" + ".join(reversed(terms)))
        for text in variants:
            out.append((box(text), g))
    for g in golds:
        c = core(g)
        m = re.match(r"^(\d+)_\{?(\d+)\}?$", c)
        if m:
            digits, base = m.group(1), m.group(2)
            for text in (digits, f"{digits}_{{{base}}}", f"({digits})_{base}", f"{digits}_{{({base})}}",
                         str(int(digits, int(base))), f"{digits}_{{{int(base) + 1}}}", f"{digits}_\\text{{{base}}}"):
                out.append((box(text), g))
        elif "_" in c and len(c) < 60:
            out.append((box(re.sub(r"_\{(\w)\}", r"_\1", c)), g))
            out.append((box(re.sub(r"_(\w)(?![\w}])", r"_{\1}", c)), g))
            out.append((box(re.sub(r"_\{?(\w)\}?", r"_{\1\1}", c, count=1)), g))
    return out


def gen_sqrt(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    real = [g for g in golds if "sqrt" in g and len(core(g)) < 30 and "," not in g]
    for g in real:
        c = core(g)
        out.append((box(re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", c)), g))
        out.append((box(re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", c)), g))
        out.append((box(re.sub(r"\\sqrt\{?(\d+)\}?", r"\1^{1/2}", c)), g))
        out.append((box(re.sub(r"\\sqrt\{?(\d+)\}?", r"\\sqrt{\1+1}", c)), g))
        out.append((box(re.sub(r"\\sqrt\{?(\d+)\}?", r"\\sqrt[3]{\1}", c)), g))
        m = re.match(r"^(\d+)\s*\\sqrt\{?(\d+)\}?$", c)
        if m:
            k, r = int(m.group(1)), int(m.group(2))
            for text in (f"\\sqrt{{{k * k * r}}}", f"{k} \\cdot \\sqrt{{{r}}}", f"\\sqrt{{{r}}} \\cdot {k}",
                         f"{k}*sqrt({r})", f"\\sqrt{{{k * r}}}", f"{k * r ** 0.5:.4f}", f"{k}\\sqrt{{{r}}}"):
                out.append((box(text), g))
        m = re.match(r"^\\sqrt\{?(\d+)\}?$", c)
        if m:
            r = int(m.group(1))
            for text in (f"{r ** 0.5:.3f}", f"{r ** 0.5:.6f}", f"\\sqrt{{{4 * r}}}/2", f"{r}^{{0.5}}",
                         f"\\sqrt{{{r + 1}}}"):
                out.append((box(text), g))
    for n in (2, 3, 5, 6, 7):
        for g in (f"\\frac{{\\sqrt{{{n}}}}}{{2}}", f"\\frac{{\\sqrt{n}}}{{{n}}}", f"\\sqrt{{{n}}}"):
            for text in (f"\\sqrt{{{n}}}/2", f"\\frac{{\\sqrt{n}}}{{2}}", f"\\frac{{1}}{{\\sqrt{{{n}}}}}",
                         f"\\frac{{{n}}}{{\\sqrt{{{n}}}}}", f"\\sqrt{n}", f"\\frac{{\\sqrt{{{n}}}}}{{{n}}}",
                         f"{n ** 0.5 / 2:.4f}", f"\\sqrt{{{n}/4}}", f"\\frac{{1}}{{2}}\\sqrt{{{n}}}"):
                out.append((box(text), g))
    return out


def gen_pi(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    real = [g for g in golds if "\\pi" in g and len(core(g)) < 25 and "," not in g and "=" not in g]
    for g in real:
        c = core(g)
        m = re.match(r"^(-?\d*)\s*\\pi$", c)
        if m:
            k = m.group(1) or "1"
            k = "-1" if k == "-" else k
            for text in ("\\pi" if k == "1" else f"{k}\\pi", f"\\pi \\cdot {k}",
                         f"{k} \\times \\pi", f"{float(k) * 3.14159265:.2f}", k, f"{k}\\pi^2", f"{k}π"):
                out.append((box(text), g))
        out.append((box(c.replace("\\pi", "\\pi ")), g))
        out.append((box(c.replace("\\pi", "\\cdot\\pi")), g))
        out.append((box(c.replace("\\pi", "(3.14)")), g))
        out.append((box(c.replace("\\pi", "")), g))
    synth = ["\\frac{\\pi}{2}", "\\frac{\\pi}{3}", "\\frac{\\pi}{4}", "\\frac{\\pi}{6}", "\\frac{2\\pi}{3}",
             "\\frac{3\\pi}{4}", "\\frac{5\\pi}{6}", "\\pi"]
    for g in synth:
        m = re.match(r"^\\frac\{(\d*)\\pi\}\{(\d+)\}$", g)
        k, d = (int(m.group(1) or 1), int(m.group(2))) if m else (1, 1)
        deg = 180 * k // d
        ks = "" if k == 1 else str(k)
        for text in (f"{ks}\\pi/{d}", f"\\frac{{{ks}\\pi}}{{{d}}}", f"\\frac{{{k}}}{{{d}}}\\pi", f"{deg}^\\circ",
                     f"{deg}", f"{k * 3.14159265 / d:.4f}", f"{ks}pi/{d}", f"{ks}π/{d}", f"\\frac{{{ks}\\pi}}{{{d + 1}}}",
                     f"{k}/{d} \\pi", f"\\dfrac{{{ks}\\pi}}{{{d}}}", f"{deg}^{{\\circ}}", f"\\frac{{{ks}}}{{{d}}}"):
            out.append((box(text), g))
    return out


def gen_power(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for b, e in ((2, 10), (3, 5), (2, 7), (5, 3), (10, 6), (7, 2), (2, 20), (3, 4), (4, 3)):
        for g in (f"{b}^{{{e}}}", str(b**e)):
            for text in (f"{b}^{{{e}}}", f"{b}^{e}", f"{b}**{e}", str(b**e), f"{b}^{{{e + 1}}}", str(b**e + 1),
                         f"{b * b}^{{{e / 2:g}}}", f"{b}^{{{e}}}-1", f"({b})^{{{e}}}", f"{b}^{{{e}.0}}"):
                out.append((box(text), g))
    perfect = {b**e: (b, e) for b in range(2, 13) for e in range(2, 8) if b**e < 10**6}
    for g in golds:
        c = core(g)
        if INT.match(c) and int(c) in perfect and int(c) > 8:
            b, e = perfect[int(c)]
            for text in (f"{b}^{{{e}}}", f"{b}^{e}", f"{b}^{{{e + 1}}}", f"{b + 1}^{{{e}}}"):
                out.append((box(text), g))
        m = re.match(r"^(\d+)\^\{(\d+)\}$", c)
        if m:
            b, e = m.group(1), m.group(2)
            for text in (f"{b}^{e}", f"{b}^{{{int(e) - 1}}}", f"{b}**{e}", f"({b})^{{{e}}}"):
                out.append((box(text), g))
    return out


def gen_other_gold(golds: list[str], rng: random.Random) -> list[Pair]:
    return [(box(core(rng.choice(golds))), g) for g in golds]


def gen_latex_noise(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 50:
            continue
        out.append((box("\\displaystyle " + c), g))
        out.append((box(c.replace("(", "\\left(").replace(")", "\\right)")), g))
        out.append((box(c.replace("\\left", "").replace("\\right", "")), g))
        out.append((box("\\!" + c + "\\,"), g))
        out.append((box(c.replace("\\frac", "\\displaystyle\\frac")), g))
        out.append((box("\\; " + c + " \\;"), g))
        out.append((box("\\quad " + c), g))
        out.append((box("~" + c), g))
        out.append((box(c.replace("\\cdot", "\\times")), g))
        out.append((box("\\mathbf{" + c + "}"), g))
        out.append((box(c.replace(",", ",\\,")), g))
    return out


def gen_trailing_text(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if len(c) > 40:
            continue
        for text in (c + ".", c + " \\text{.}", c + " \\text{ is the answer}", c + " (approx.)", c + ";",
                     c + ",", c + " \\quad \\blacksquare", "\\text{The answer is } " + c, c + " \\text{ (final answer)}",
                     c + " \\text{ or } " + wrong_number(c, rng) if value(c) is not None else c + " \\text{ or more}",
                     c + " \\text{ ways}", "\\text{answer: }" + c):
            out.append((box(text), g))
        out.append((f"The answer is {box(c)}. (I hope this is right; the other option was {wrong_number(c, rng)}.)", g))
    return out


def gen_mixed_number(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    sources = [g for g in golds if re.match(r"^\d+\\frac\{\d+\}\{\d+\}$", core(g))]
    improper = []
    for g in golds:
        x = value(core(g))
        if x is not None and x > 1 and x.denominator > 1 and "frac" in g:
            improper.append((g, x))
    for g in sources:
        m = re.match(r"^(\d+)\\frac\{(\d+)\}\{(\d+)\}$", core(g))
        improper.append((g, int(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3)))))
    for g, x in improper:
        w, r = divmod(x.numerator, x.denominator)
        for text in (f"{w}\\frac{{{r}}}{{{x.denominator}}}", f"{w} \\frac{{{r}}}{{{x.denominator}}}",
                     f"{w} {r}/{x.denominator}", f"{w}+\\frac{{{r}}}{{{x.denominator}}}", latex_frac(x),
                     f"{w}{r}/{x.denominator}", exact_decimal(x) or decimal(x, 3), f"{w}\\tfrac{r}{x.denominator}"
                     if r < 10 and x.denominator < 10 else f"{w}\\tfrac{{{r}}}{{{x.denominator}}}",
                     f"{w + 1}\\frac{{{r}}}{{{x.denominator}}}", f"{x.numerator}/{x.denominator}"):
            out.append((box(text), g))
    return out


def gen_answer_list(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    lists = [g for g in golds if len(split_top(core(g))) > 1 and len(core(g)) < 90 and "where" not in g
             and not re.match(r"^(\\left)?\(.*\)$", core(g)) and not re.search(r"\d,\\?!?\s?\d{3}", core(g))
             and "\\{" not in g]
    lists += [g for g in golds if "),(" in core(g).replace(" ", "") and len(core(g)) < 90]
    for g in dict.fromkeys(lists):
        items = split_top(core(g))
        rev = list(reversed(items))
        shuffled = items[:]
        rng.shuffle(shuffled)
        for text in (", ".join(rev), ", ".join(shuffled), " \\text{ and } ".join(items), " or ".join(items),
                     "; ".join(items), "\\{" + ", ".join(items) + "\\}", ", ".join(items[:-1]),
                     ", ".join(items + items[:1]), ", ".join(f"x={it}" for it in items), ",".join(items)):
            out.append((box(text), g))
    return out


def gen_polynomial(golds: list[str], rng: random.Random) -> list[Pair]:
    polys = [g for g in golds if re.match(r"^[\d\s+\-a-z^{}]+$", core(g)) and re.search(r"[a-z]\^", core(g))]
    polys += ["x^2+2x+1", "3x^2-5x+2", "2n+1", "a^2-b^2", "t^3-t"]
    out = []
    for g in polys:
        c = core(g)
        terms = re.findall(r"[+-]?\s*[^+-]+", c.replace(" ", ""))
        terms = [t if t[0] in "+-" else "+" + t for t in terms]
        rev = "".join(reversed(terms)).lstrip("+")
        var = (re.findall(r"[a-z]", c) or ["x"])[0]
        other = "t" if var != "t" else "u"
        for text in (rev, c.replace(" ", ""), re.sub(r"\^(\d)", r"^{\1}", c), c.replace("^", "**"),
                     "2(" + c + ")", c.replace(var, other), flip_signs(c), c + "+1", re.sub(r"(\d)([a-z])", r"\1 \\cdot \2", c),
                     "(" + c + ")", c.replace("+", "+0+", 1)):
            out.append((box(text), g))
    return out


def gen_long_expression(golds: list[str], rng: random.Random) -> list[Pair]:
    longs = [g for g in golds if len(core(g)) > 25 and re.search(r"[a-zA-Z]", core(g)) and "," not in g
             and "where" not in g]
    out = []
    for g in longs:
        c = core(g)
        terms = split_top(c, "+")
        for text in (c.replace(" ", ""), c.replace("\\left", "").replace("\\right", ""), flip_signs(c),
                     " + ".join(reversed(terms)) if len(terms) > 1 else "2 \\cdot " + c, c.replace("\\frac", "\\dfrac"),
                     re.sub(r"(\d)", lambda m: str((int(m.group(1)) + 1) % 10), c, count=1)):
            out.append((box(text), g))
    return out


def gen_plus_minus(golds: list[str], rng: random.Random) -> list[Pair]:
    pm = [g for g in golds if "\\pm" in g] + ["2 \\pm \\sqrt{3}", "-1 \\pm \\sqrt{5}", "\\pm 4", "3 \\pm 2i",
                                                "\\frac{1 \\pm \\sqrt{5}}{2}", "5 \\pm \\sqrt{7}"]
    out = []
    for g in pm:
        c = core(g)
        plus, minus = c.replace("\\pm", "+"), c.replace("\\pm", "-")
        for text in (f"{plus}, {minus}", f"{minus}, {plus}", plus, minus, c.replace("\\pm", "\\mp"),
                     f"{plus} \\text{{ and }} {minus}", c.replace("\\pm", "±"), f"\\{{{plus}, {minus}\\}}",
                     c.replace(" ", ""), f"x = {c}"):
            out.append((box(text), g))
    return out


def gen_money(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    money = [g for g in golds if "\\$" in g or "cents" in g]
    money += [core(g) for g in number_golds(golds) if not core(g).startswith("-")][:70]
    for g in money:
        c = re.sub(r"\\text\{\s*cents\}", "", core(g)).replace("\\$", "").strip()
        plain = re.sub(r",\\!\s*|,", "", c)
        x = value(plain)
        if x is None:
            continue
        for text in (f"\\${plain}", f"{plain} \\text{{ dollars}}", f"\\$ {plain}", f"{plain}\\$", f"\\${decimal(x, 2)}",
                     f"{plain} dollars", f"\\text{{\\${plain}}}", f"\\${wrong_number(plain, rng)}",
                     f"USD {plain}", f"{plain}\\text{{ cents}}"):
            out.append((box(text), g))
    return out


def gen_leading_zero(golds: list[str], rng: random.Random) -> list[Pair]:
    out = []
    for g in golds:
        c = core(g)
        if INT.match(c) and not c.startswith("-") and len(c) <= 3:
            n = int(c)
            for text in (str(n), f"{n:03d}", f"0{n:03d}", f"{n}.0", f"00{n}", f"{n:03d}.", f"{n + 1:03d}"):
                out.append((box(text), g))
    return out


GENERATORS: dict[str, Callable[[list[str], random.Random], list[Pair]]] = {
    "gold_exact": gen_gold_exact,
    "spacing_dollar": gen_spacing_dollar,
    "frac_forms": gen_frac_forms,
    "decimal_fraction": gen_decimal_fraction,
    "integer_forms": gen_integer_forms,
    "sign_error": gen_sign_error,
    "near_miss": gen_near_miss,
    "multi_box": gen_multi_box,
    "unclosed_empty": gen_unclosed_empty,
    "fbox": gen_fbox,
    "nested_braces": gen_nested_braces,
    "units": gen_units,
    "degrees": gen_degrees,
    "percent": gen_percent,
    "thousands": gen_thousands,
    "sci_notation": gen_sci_notation,
    "interval": gen_interval,
    "tuple": gen_tuple,
    "set": gen_set,
    "matrix": gen_matrix,
    "text_wrap": gen_text_wrap,
    "choice_letter": gen_choice_letter,
    "equation": gen_equation,
    "complex": gen_complex,
    "subscript": gen_subscript,
    "sqrt": gen_sqrt,
    "pi": gen_pi,
    "power": gen_power,
    "other_gold": gen_other_gold,
    "latex_noise": gen_latex_noise,
    "trailing_text": gen_trailing_text,
    "mixed_number": gen_mixed_number,
    "answer_list": gen_answer_list,
    "polynomial": gen_polynomial,
    "long_expression": gen_long_expression,
    "plus_minus": gen_plus_minus,
    "money": gen_money,
    "leading_zero": gen_leading_zero,
}


def _boxed(pairs: list[tuple[str, str]]) -> list[Pair]:
    return [(box(answer), gold) for answer, gold in pairs]


# Shapes that are always in the suite (the rest of a class is sampled up to its cap).
PINNED: dict[str, list[Pair]] = {
    "near_miss": _boxed([("41.79", "41.8"), ("41.80", "41.8"), ("42", "41.8"), ("0.5", "0.49"), ("0.49", "0.5"),
                         ("0.50", "0.5"), ("0.4999999", "0.5"), ("41", "42"), ("43", "42")]),
    "multi_box": [("So \\boxed{41} wait no \\boxed{42}.", "42"), ("So \\boxed{41} wait no \\boxed{42}.", "41"),
                  ("\\boxed{42} and \\boxed{42}", "42"), ("First \\boxed{42}, then \\boxed{41}.", "42"),
                  ("First \\boxed{41}, then \\boxed{42}.", "42")],
    "unclosed_empty": [("The answer is \\boxed{42", "42"), ("The answer is \\boxed{}.", "42"),
                       ("The answer is 42.", "42")],
    "fbox": [("The answer is \\fbox{42}.", "42"), ("\\fbox{41} so \\boxed{42}", "42")],
    "nested_braces": _boxed([("{42}", "42"), ("\\frac{{1}}{{2}}", "\\frac{1}{2}")]),
    "units": _boxed([("5 \\text{ cm}", "5"), ("5 m", "5"), ("5 \\mbox{ cm}", "5"), ("5\\mbox{ m}", "5"),
                     ("6 \\text{ cm}", "5")]),
    "degrees": _boxed([("90^\\circ", "90"), ("90^{\\circ}", "90"), ("90", "90^\\circ"), ("90^{\\circ}", "90^\\circ"),
                       ("91^\\circ", "90")]),
    "percent": _boxed([("8\\%", "$8 \\%$"), ("8\\text{ percent}", "$8 \\%$"), ("0.08", "$8 \\%$"), ("8", "$8 \\%$"),
                       ("9\\%", "$8 \\%$")]),
    "thousands": _boxed([("1,000", "1000"), ("1{,}000", "1000"), ("1\\,000", "1000"), ("0,006", "0.006"),
                         ("1,000", "1")]),
    "sci_notation": _boxed([("4.5\\times10^{3}", "4500"), ("4.5e3", "4500"), ("4.5 \\cdot 10^3", "4500"),
                            ("4.5\\times10^{3}", "4.5e3"), ("4500", "4.5e3"), ("4.5\\times10^{4}", "4500")]),
    "interval": _boxed([("(-\\infty, 0)", "(-\\infty, 0]"), ("(-\\infty, 0]", "(-\\infty, 0)"),
                        ("(-\\infty, 0)", "(-\\infty, 0)"), ("(1,\\infty) \\cup (-\\infty,0)", "(-\\infty,0) \\cup (1,\\infty)")]),
    "tuple": _boxed([("(2,1)", "(1,2)"), ("( 1 , 2 )", "(1,2)"), ("\\left( 1, 2 \\right)", "(1,2)")]),
    "text_wrap": _boxed([("\\text{Evelyn}", "\\text{Evelyn}"), ("Evelyn", "\\text{Evelyn}"),
                         ("\\textbf{Evelyn}", "\\text{Evelyn}"), ("\\text{Navin}", "\\text{Evelyn}")]),
    "equation": _boxed([("x = 5", "5"), ("k=1", "$k=1$"), ("-k=1", "$k=1$"), ("2f(x)=2x", "$f(x)=2 x$"),
                        ("2f(x)=4x", "$f(x)=2 x$"), ("f(x)=2x", "$f(x)=2 x$"), ("5 = x", "x=5"), ("5", "x=5")]),
    "complex": _boxed([("6-5i", "6 - 5i"), ("6 - i 5", "6 - 5i"), ("-5i+6", "6 - 5i"), ("-i5+6", "6 - 5i"),
                       ("i", "i"), ("6+5i", "6 - 5i")]),
    "subscript": _boxed([("E_{2}+E_{1}", "E_{1}+E_{2}"), ("x_0", "x_{0}"), ("x_{0}", "x_0"), ("x_1", "x_0")]),
    "sqrt": _boxed([("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}"), ("\\frac{\\sqrt2}{2}", "\\frac{\\sqrt{2}}{2}"),
                    ("\\sqrt2", "\\sqrt{2}"), ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"), ("\\sqrt{3}", "\\sqrt{2}")]),
    "pi": _boxed([("\\pi/2", "\\frac{\\pi}{2}"), ("\\frac{\\pi}{2}", "\\frac{\\pi}{2}"), ("90^\\circ", "\\frac{\\pi}{2}"),
                  ("\\frac{\\pi}{2}", "90^\\circ")]),
    "power": _boxed([("2^{10}", "1024"), ("1024", "2^{10}"), ("2^{11}", "1024")]),
    "latex_noise": _boxed([("\\left( 1, 2 \\right)", "(1,2)"), ("\\!5", "5"), ("\\displaystyle \\frac{1}{2}", "\\frac{1}{2}")]),
    "trailing_text": _boxed([("5.", "5"), ("5 \\text{ apples}", "5"), ("5 \\text{ or } 6", "5")]),
}


def load_golds(parquet: Path) -> list[str]:
    """The unique ground truths, in file order."""
    frame = pd.read_parquet(parquet, columns=["reward_model"])
    return list(dict.fromkeys(str(rm["ground_truth"]) for rm in frame["reward_model"]))


def respond(pair: Pair, rng: random.Random) -> Pair:
    """Put a bare boxed answer into a full response (full responses are kept as they are)."""
    text, gold = pair
    if text.startswith("\\boxed{") and text.endswith("}") and text.count("\\boxed") == 1:
        return rng.choice(TEMPLATES).replace("\\boxed{ANS}", text), gold
    return text, gold


def build(golds: list[str], seed: int = SEED) -> list[dict[str, str]]:
    """All cases, each class capped and the whole deduplicated on (response, gold)."""
    seen: set[Pair] = set()
    cases: list[dict[str, str]] = []
    for name, generate in GENERATORS.items():
        rng = random.Random(f"{seed}:{name}")
        pinned = [p for p in dict.fromkeys(PINNED.get(name, [])) if p not in seen]
        unique = [p for p in dict.fromkeys(generate(golds, rng)) if p not in seen and p not in pinned]
        room = CAPS.get(name, CAP) - len(pinned)
        if len(unique) > room:
            keep = sorted(rng.sample(range(len(unique)), room))
            unique = [unique[i] for i in keep]
        unique = pinned + unique
        seen.update(unique)  # an answer given to one class is not given again to another
        for pair in unique:
            response, gold = respond(pair, rng)
            cases.append({"class": name, "gold": gold, "response": response})
    return cases


def counts(cases: Iterable[dict[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for case in cases:
        out[case["class"]] = out.get(case["class"], 0) + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", type=Path, required=True, help="valid.all.parquet")
    parser.add_argument("--out", type=Path, required=True, help="where to write the unlabelled cases (JSON)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    cases = build(load_golds(args.parquet), args.seed)
    args.out.write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")
    for name, count in counts(cases).items():
        print(f"{name:18s} {count}")
    print(f"{'total':18s} {len(cases)}")


if __name__ == "__main__":
    main()
