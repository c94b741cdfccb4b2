"""Imported by the grading workers' fork server: loads what sympy and Math-Verify import lazily, and warms
the LaTeX parser.

Importing this module grades ten common answer shapes in both modes, so that every worker forked
from the server starts with those imports done and with ANTLR's prediction tables (built lazily, per grammar,
as inputs are parsed) already holding the usual paths: its first real items are not charged for them (and
cannot time out on them). It costs about a second, once per fork server.
"""

from __future__ import annotations

import gc

from luffy_math.grader import grade

# (answer, gold) pairs in the shapes math answers usually take.
ANSWER_SHAPES = [
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
    (r"\{1, 2\}", r"\{2, 1\}"),
    ("42", "24"),
    ("3.5", r"\dfrac{7}{2}"),
    (r"2\sqrt{3}", r"\sqrt{12}"),
    (r"\pi", "3.14"),
    ("(1, 2)", "(2, 1)"),
    ("[0, 1)", r"(-\infty, 3]"),
    ("x^2 + 2x + 1", "(x+1)^2"),
    (r"50\%", "0.5"),
]

for _answer, _gold in ANSWER_SHAPES:
    grade(rf"\boxed{{{_answer}}}", _gold, mode="luffy", timeout=None)
    grade(rf"So the answer is $\boxed{{{_answer}}}$.", _gold, mode="math_verify", timeout=None)

# Workers fork from the process that imports this: move everything loaded so far out of the collector's
# sight, so that a worker's garbage collections neither walk these objects nor copy their pages.
gc.freeze()
