"""A few well-known problems from the benchmarks LUFFY reports, with their gold answers.

Typed in by hand (statements as in LUFFY's evaluation data); the data files themselves stay out of the repo.
"""

from __future__ import annotations

# (label, problem, gold answer)
BENCHMARK_EXAMPLES: list[tuple[str, str, str]] = [
    ("MATH-500: divisors of 196", "How many positive whole-number divisors does 196 have?", "9"),
    ("MATH-500: rectangular to polar",
     "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.  Enter your answer in the "
     "form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$",
     "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("AIME 2024: Aya's walk",
     "Every morning Aya goes for a $9$-kilometer-long walk and stops at a coffee shop afterwards. When she "
     "walks at a constant speed of $s$ kilometers per hour, the walk takes her 4 hours, including $t$ minutes "
     "spent in the coffee shop. When she walks $s+2$ kilometers per hour, the walk takes her 2 hours and 24 "
     "minutes, including $t$ minutes spent in the coffee shop. Suppose Aya walks at $s+\\frac{1}{2}$ "
     "kilometers per hour. Find the number of minutes the walk takes her, including the $t$ minutes spent "
     "in the coffee shop.", "204"),
    ("AIME 2025: bases b > 9", "Find the sum of all integer bases $b>9$ for which $17_{b}$ is a divisor of $97_{b}$.",
     "70"),
    ("AMC 2023: continued fraction",
     "$\\frac{m}{n}$ is the Irreducible fraction value of \\[3+\\frac{1}{3+\\frac{1}{3+\\frac13}}\\], "
     "what is the value of $m+n$?", "142"),
]
