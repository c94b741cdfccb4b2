"""Imported by the grading workers' fork server: loads what sympy and Math-Verify import lazily.

Importing this module grades one item per path, so that every worker forked from the server starts with
those imports done and its first real item is not charged for them (and cannot time out on them).
"""

from __future__ import annotations

from luffy_math.grader import grade

grade(r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", mode="luffy", timeout=None)
grade(r"$\boxed{\{1, 2\}}$", r"\{2, 1\}", mode="math_verify", timeout=None)
