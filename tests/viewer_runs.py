"""Two small run directories in the harness store's format, graded for real by luffy_math, for the viewer.

The responses have the shape the harness stores for LUFFY's template (generation starts inside the thought:
text, ``</think>``, the answer part), plus the edge cases the filters exist for: the graders disagreeing, a
truncated output with no ``</think>``, a grader timeout.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks.store import config_hash
from luffy_math import answer_part, grade

THOUGHT = "Let me think step by step. We need $6 \\times 7$.\n</think>\n\n"
# (benchmark, problem, gold, responses of run A, responses of run B)
PROBLEMS = [
    ("math500", "0", "42", [THOUGHT + "The answer is $\\boxed{42}$."], [THOUGHT + "The answer is $\\boxed{24}$."]),
    ("math500", "1", "\\frac{1}{2}", [THOUGHT + "So it is $\\boxed{0.5}$."], [THOUGHT + "So it is $\\boxed{1/2}$."]),
    # The graders disagree: no box, so the luffy grader says wrong; Math-Verify reads the 42 and says right.
    ("math500", "2", "42", [THOUGHT + "The answer is 42."], [THOUGHT + "Therefore $\\boxed{42}$."]),
    ("aime24", "0", "204", [THOUGHT + "Hence $\\boxed{204}$.", "Still thinking, the sum is 2"],
     [THOUGHT + "Hence $\\boxed{204}$.", THOUGHT + "Hence $\\boxed{240}$."]),
]


def write_runs(root: Path) -> tuple[Path, Path]:
    """Run directories ``root/base`` and ``root/tuned`` (one seed each)."""
    paths = []
    for column, name in ((3, "base"), (4, "tuned")):
        out = root / name
        out.mkdir(parents=True, exist_ok=True)
        configs, lines = {}, []
        for benchmark, problem, gold, *responses in PROBLEMS:
            config = {"benchmark": benchmark, "variant": f"valid.all.parquet [{benchmark}]", "data": "fixture",
                      "model": "tiny", "backend": "vllm", "seed": 0, "temperature": 0.6, "top_p": 1.0, "max_tokens": 8192,
                      "template": "own"}
            digest = config_hash(config)
            configs[digest] = config
            for sample, response in enumerate(responses[column - 3]):
                truncated = "</think>" not in response
                graded_text = answer_part(response)
                grades = {mode: asdict(grade(graded_text, gold, mode)) for mode in ("luffy", "math_verify")}
                if benchmark == "aime24" and sample == 1 and name == "base":
                    grades["math_verify"].update(timed_out=True, decided_by="timeout", correct=False)
                lines.append(json.dumps({
                    "benchmark": benchmark, "problem": problem, "sample": sample, "seed": 0, "config_hash": digest,
                    "prompt": f"Problem {problem} of {benchmark}: what is $6 \\times 7$?", "response": response,
                    "gold": gold, "extracted": grades["luffy"]["extracted"], "grades": grades,
                    "finish_reason": "length" if truncated else "stop", "prompt_tokens": 40,
                    "completion_tokens": 4096 if truncated else 30}))
        (out / "generations.seed0.jsonl").write_text("\n".join(lines) + "\n")
        (out / "configs.json").write_text(json.dumps(configs))
        paths.append(out)
    return paths[0], paths[1]
