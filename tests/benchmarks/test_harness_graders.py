"""The harness's graders: "luffy_exact" is graded and recorded beside "luffy" and "math_verify" where the
environment with LUFFY's pins (.venv-exact) exists; runs without it (made elsewhere, or by an older harness)
still report and compare over the graders they carry. Labels come from luffy_math's real pool."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.compare import compare
from benchmarks.grading import GRADERS, collect, grader_versions, graders_here, submit_all
from benchmarks.report import build
from benchmarks.store import config_hash, read_records
from luffy_math import available_modes
from luffy_math.pins import EXACT_PYTHON_ENV, exact_available, luffy_pins
from luffy_math.workers import GradingPool

# (problem, gold, response of the base run, response of the tuned run). Labels (luffy, math_verify):
# base T/T, T/T, F/T (no box: LUFFY's grader reads only a box), F/F, T/T; tuned T/T, T/T, T/T, T/T, F/F.
PROBLEMS = [
    ("0", "42", "<think>\nhmm \\boxed{7}\n</think>\n\nSo $\\boxed{42}$.", "So $\\boxed{42}$."),
    ("1", "\\frac{1}{2}", "It is $\\boxed{0.5}$.", "It is $\\boxed{1/2}$."),
    ("2", "42", "The answer is 42.", "Therefore $\\boxed{42}$."),
    ("3", "7", "So $\\boxed{8}$.", "So $\\boxed{7}$."),
    ("4", "10", "Hence $\\boxed{10}$.", "Hence $\\boxed{11}$."),
]
BASE_LUFFY = [True, True, False, False, True]
BASE_MATH_VERIFY = [True, True, True, False, True]
TUNED = [True, True, True, True, False]
# What an older harness logged in runs.jsonl: two graders, this environment's four libraries, no "graders".
OLD_VERSIONS = {"vllm": "0.9.0", "luffy": "0.0.9", "math-verify": "0.8.0", "latex2sympy2_extended": "1.10.1",
                "sympy": "1.13.1"}


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1) as shared:
        yield shared


def need_exact() -> None:
    assert exact_available(), ".venv-exact is missing: build it with `bash scripts/setup.sh exact`"


def write_run(out: Path, which: str, pool: GradingPool | None, graders: tuple[str, ...] | None = None,
              versions: dict | None = None) -> Path:
    """A run directory of math500 as `run` stores it (``which``: the base or the tuned responses); labels graded by ``pool`` with ``graders`` (None: the
    graders here); ``pool`` None leaves the samples ungraded. runs.jsonl gets one entry with ``versions``."""
    out.mkdir(parents=True)
    config = {"benchmark": "math500", "variant": "valid.all.parquet [math500]", "data": "fixture", "model": "tiny",
              "backend": "vllm", "seed": 0, "temperature": 0.6, "top_p": 1.0, "max_tokens": 64, "template": "own"}
    digest = config_hash(config)
    lines = []
    for problem, gold, base, tuned in PROBLEMS:
        response = tuned if which == "tuned" else base
        record = {"benchmark": "math500", "problem": problem, "sample": 0, "seed": 0, "config_hash": digest,
                  "response": response, "gold": gold, "finish_reason": "stop", "completion_tokens": 12}
        if pool is not None:
            record["grades"] = collect(submit_all(pool, response, gold, graders))
            record["extracted"] = (record["grades"]["luffy"] or {}).get("extracted")
        lines.append(json.dumps(record))
    (out / "generations.seed0.jsonl").write_text("\n".join(lines) + "\n")
    (out / "configs.json").write_text(json.dumps({digest: config}))
    if versions is not None:
        (out / "runs.jsonl").write_text(json.dumps({"time": 0, "argv": ["run"], "generated": len(PROBLEMS),
                                                    "seconds": 1.0, "versions": versions}) + "\n")
    return out


def labels(run: Path, grader: str) -> list[bool | None]:
    return [(r["grades"].get(grader) or {}).get("correct") if grader in r["grades"] else None
            for r in sorted(read_records(run), key=lambda r: r["problem"])]


def grader_line(markdown: str, grader: str) -> str:
    found = [line for line in markdown.splitlines() if line.startswith(f"- `{grader}`: ")]
    assert len(found) == 1, (grader, markdown)
    return found[0]


def test_graders_are_luffys_modes_in_report_order() -> None:
    need_exact()
    assert GRADERS == ("luffy", "luffy_exact", "math_verify")
    assert set(GRADERS) == set(available_modes())
    assert graders_here() == GRADERS
    versions = grader_versions()
    assert versions["luffy_exact"] == luffy_pins()  # asked of the environment itself
    assert versions["math-verify"] == version("math-verify") != luffy_pins()["math-verify"]


def test_scored_samples_carry_luffy_exact_and_the_report_names_each_grader(tmp_path: Path, capsys) -> None:
    need_exact()
    run = write_run(tmp_path / "run", "base", pool=None)
    assert main(["score", str(run), "--no-progress", "--grading-workers", "1"]) == 0
    printed = capsys.readouterr().out
    for record in read_records(run):
        assert list(record["grades"]) == list(GRADERS) and all(record["grades"].values())
    assert labels(run, "luffy_exact") == labels(run, "luffy") == BASE_LUFFY
    assert labels(run, "math_verify") == BASE_MATH_VERIFY
    markdown = (run / "report.md").read_text()
    assert printed.strip() == markdown.strip()
    assert "| luffy | – | – | – | 60.0 | – | – | – |" in markdown
    assert "| luffy_exact | – | – | – | 60.0 | – | – | – |" in markdown
    assert "| math_verify | – | – | – | 80.0 | – | – | – |" in markdown
    assert re.findall(r"^## Details \(grader: (\w+)\)$", markdown, re.M) == list(GRADERS)
    exact = markdown.split("## Details (grader: luffy_exact)")[1].split("##")[0]
    assert "| MATH-500 | 5 | 1 | 60.0 | @1 60.0 | 60.0 | 0 | 80.0 |" in exact  # maj@k, its ties, formatted
    pins = ", ".join(f"{package} {pinned}" for package, pinned in luffy_pins().items())
    assert grader_line(markdown, "luffy_exact") == f"- `luffy_exact`: LUFFY's grader under LUFFY's pinned libraries; {pins}"
    assert "math-verify 0.6.0" in pins
    assert f"math-verify {version('math-verify')}" in grader_line(markdown, "luffy")
    assert grader_line(markdown, "math_verify").startswith("- `math_verify`: Math-Verify; luffy ")
    result = json.loads((run / "report.json").read_text())
    assert result["graders"] == list(GRADERS) and result["benchmarks"]["math500"]["luffy_exact"]["ungraded"] == 0
    logged = [json.loads(line) for line in (run / "runs.jsonl").read_text().splitlines()]
    assert logged[-1]["graders"] == list(GRADERS) and logged[-1]["versions"]["luffy_exact"] == luffy_pins()


def test_without_the_exact_environment_two_graders_and_old_runs_report_and_compare(tmp_path: Path, monkeypatch,
                                                                                   pool) -> None:
    monkeypatch.setenv(EXACT_PYTHON_ENV, str(tmp_path / "no-such-env" / "bin" / "python"))
    assert not exact_available() and "luffy_exact" not in available_modes()
    assert graders_here() == ("luffy", "math_verify")
    assert grader_versions()["luffy_exact"] == "not available"
    base = write_run(tmp_path / "base", "base", pool, versions=OLD_VERSIONS)  # as an older harness left it
    tuned = write_run(tmp_path / "tuned", "tuned", pool, versions=OLD_VERSIONS)
    assert all(list(r["grades"]) == ["luffy", "math_verify"] for r in read_records(base))
    assert labels(base, "luffy") == BASE_LUFFY and labels(tuned, "luffy") == TUNED

    markdown = build(base)
    assert "luffy_exact" not in markdown
    assert "| luffy | – | – | – | 60.0 |" in markdown and "| math_verify | – | – | – | 80.0 |" in markdown
    assert re.findall(r"^## Details \(grader: (\w+)\)$", markdown, re.M) == ["luffy", "math_verify"]
    # The versions the run recorded, not the ones installed now.
    recorded = "luffy 0.0.9, math-verify 0.8.0, latex2sympy2_extended 1.10.1, sympy 1.13.1"
    assert grader_line(markdown, "luffy") == f"- `luffy`: LUFFY's reported grader (OAT boxed grader); {recorded}"
    assert grader_line(markdown, "math_verify") == f"- `math_verify`: Math-Verify; {recorded}"
    assert json.loads((base / "report.json").read_text())["graders"] == ["luffy", "math_verify"]

    text = compare([base, tuned], tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["graders"] == ["luffy", "math_verify"]
    diff = result["differences"][0]["benchmarks"]["math500"]
    assert set(diff) == {"problems", "luffy", "math_verify"}
    assert diff["luffy"]["difference"] == pytest.approx(0.8 - 0.6)
    assert diff["luffy"]["flips"] == {"gained": ["2", "3"], "lost": ["4"]}
    assert diff["math_verify"]["difference"] == pytest.approx(0.0)
    assert "## Grader: luffy\n" in text and "## Grader: math_verify\n" in text and "luffy_exact" not in text

    # Scored here, the old run keeps its two graders; the report now names the versions of that scoring.
    assert main(["score", str(base), "--no-progress", "--grading-workers", "1"]) == 0
    assert all(list(r["grades"]) == ["luffy", "math_verify"] for r in read_records(base))
    assert f"math-verify {version('math-verify')}" in grader_line((base / "report.md").read_text(), "luffy")


def test_a_label_missing_from_some_samples_counts_as_ungraded(tmp_path: Path, pool) -> None:
    need_exact()
    run = write_run(tmp_path / "run", "tuned", pool, versions=OLD_VERSIONS)
    records = read_records(run)
    for record in records[:2]:  # graded before .venv-exact was built
        del record["grades"]["luffy_exact"]
    (run / "generations.seed0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    markdown = build(run)
    result = json.loads((run / "report.json").read_text())["benchmarks"]["math500"]
    assert result["luffy_exact"]["ungraded"] == 2 and result["luffy"]["ungraded"] == 0
    assert result["luffy_exact"]["avg"]["mean"] == pytest.approx(2 / 5)  # problems 2 and 3 of TUNED's four
    assert result["luffy"]["avg"]["mean"] == pytest.approx(4 / 5)
    line = grader_line(markdown, "luffy_exact")
    assert "2 samples lack its label and count as wrong" in line
    assert "(installed now; the run did not record them)" in line  # runs.jsonl of the old harness has none


def test_compare_three_graders_against_two_compares_the_shared_ones(tmp_path: Path, pool) -> None:
    need_exact()
    old = write_run(tmp_path / "old", "base", pool, graders=("luffy", "math_verify"), versions=OLD_VERSIONS)
    new = write_run(tmp_path / "new", "tuned", pool)
    assert all(list(r["grades"]) == list(GRADERS) for r in read_records(new))
    text = compare([new, old], tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["graders"] == ["luffy", "math_verify"]
    assert [r["graders"] for r in result["runs"]] == [list(GRADERS), ["luffy", "math_verify"]]
    assert set(result["runs"][0]["scores"]["math500"]) == {"luffy", "math_verify"}
    diff = result["differences"][0]["benchmarks"]["math500"]
    assert set(diff) == {"problems", "luffy", "math_verify"}
    assert diff["luffy"]["difference"] == pytest.approx(0.6 - 0.8)
    assert diff["math_verify"]["difference"] == pytest.approx(0.8 - 0.8)
    assert "## Grader: luffy_exact" not in text
    assert "Not compared: luffy_exact (recorded only by `new`)." in text

    # `score` gives the old run its luffy_exact labels: now all three graders are compared.
    assert main(["score", str(old), "--no-progress", "--grading-workers", "1"]) == 0
    assert labels(old, "luffy_exact") == BASE_LUFFY
    text = compare([new, old], tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["graders"] == list(GRADERS)
    assert result["differences"][0]["benchmarks"]["math500"]["luffy_exact"]["difference"] == pytest.approx(0.6 - 0.8)
    assert "## Grader: luffy_exact\n" in text and "Not compared" not in text


def test_a_run_with_no_known_grader_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", "base", None)
    records = [{**r, "grades": {"someone_else": {"correct": True}}} for r in read_records(run)]
    (run / "generations.seed0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no sample carries a label of luffy, luffy_exact, math_verify" in err
    assert "\n" not in err
