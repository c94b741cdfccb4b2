"""`python -m benchmarks compare`: paired differences with bootstrap intervals, flips, the recomputed Avg.,
published rows (flagged when measured otherwise), and refusals; the report's order and its all-zero chart.
Synthetic run directories here (the store's own format); the end-to-end run on LUFFY's parquet with the real
engine is in test_harness_vllm.py."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from cli_errors import refusal, run_cli

from benchmarks import metrics
from benchmarks.compare import compare
from benchmarks.problems import HarnessError
from benchmarks.published import reference_rows
from benchmarks.report import ALL_ZERO_NOTE, build, chart_figure
from benchmarks.store import config_hash, read_records
from benchmarks.tasks import MATH_BENCHMARKS


def write_run(out: Path, labels: dict[str, list[list[bool]]], seed: int = 0, variant: str = "valid.all.parquet",
              math_verify_same: bool = True, max_tokens: int = 8192) -> Path:
    """A run directory holding ``labels[benchmark][problem]`` = the samples' labels (luffy grader), one seed."""
    out.mkdir(parents=True, exist_ok=True)
    configs = json.loads((out / "configs.json").read_text()) if (out / "configs.json").exists() else {}
    lines = []
    for benchmark, problems in labels.items():
        config = {"benchmark": benchmark, "variant": f"{variant} [{benchmark}]", "data": f"data-of-{variant}",
                  "model": "tiny", "backend": "vllm", "seed": seed, "temperature": 0.6, "top_p": 1.0,
                  "max_tokens": max_tokens, "template": "own"}
        digest = config_hash(config)
        configs[digest] = config
        for problem, samples in enumerate(problems):
            for sample, correct in enumerate(samples):
                grades = {"luffy": {"correct": correct, "extracted": "1"},
                          "math_verify": {"correct": correct if math_verify_same else not correct, "extracted": "1"}}
                lines.append(json.dumps({"benchmark": benchmark, "problem": str(problem), "sample": sample, "seed": seed,
                                         "gold": "1", "config_hash": digest, "grades": grades}))
    (out / f"generations.seed{seed}.jsonl").write_text("\n".join(lines) + "\n")
    (out / "configs.json").write_text(json.dumps(configs))
    return out


def column(values: list[bool]) -> list[list[bool]]:
    return [[v] for v in values]


def test_identical_runs_differ_by_nothing(tmp_path: Path) -> None:
    labels = {"math500": column([i % 3 == 0 for i in range(60)])}
    a, b = write_run(tmp_path / "a", labels), write_run(tmp_path / "b", labels)
    compare([a, b], tmp_path / "out")
    diff = json.loads((tmp_path / "out" / "compare.json").read_text())["differences"][0]["benchmarks"]["math500"]
    assert diff["luffy"]["difference"] == diff["luffy"]["low"] == diff["luffy"]["high"] == 0
    assert not diff["luffy"]["significant"] and diff["luffy"]["flips"] == {"gained": [], "lost": []}


def test_a_clear_gain_is_significant_and_its_flips_are_listed(tmp_path: Path) -> None:
    base = [i < 20 for i in range(100)]  # 20 %
    better = [i < 60 for i in range(100)]  # 60 %: problems 20..59 gained
    a = write_run(tmp_path / "a", {"math500": column(base)})
    b = write_run(tmp_path / "b", {"math500": column(better)})
    text = compare([a, b], tmp_path / "out", resamples=1000)
    entry = json.loads((tmp_path / "out" / "compare.json").read_text())["differences"][0]["benchmarks"]["math500"]
    luffy = entry["luffy"]
    assert luffy["difference"] == pytest.approx(0.40)
    assert 0.25 < luffy["low"] < 0.40 < luffy["high"] < 0.55 and luffy["significant"]
    assert luffy["flips"]["gained"] == sorted(str(i) for i in range(20, 60)) and luffy["flips"]["lost"] == []
    assert "+40.0 [" in text and "] *" in text
    for name in ("compare.md", "compare.json", "compare.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_noise_is_not_significant_and_the_interval_is_seeded(tmp_path: Path) -> None:
    # Two runs that differ on 4 of 40 problems, 2 each way: no difference the interval can exclude 0 for.
    base = [i % 2 == 0 for i in range(40)]
    other = list(base)
    for i in (0, 2, 1, 3):
        other[i] = not other[i]
    a, b = write_run(tmp_path / "a", {"aime24": column(base)}), write_run(tmp_path / "b", {"aime24": column(other)})
    first = compare([a, b], tmp_path / "one", seed=7)
    assert compare([a, b], tmp_path / "two", seed=7) == first  # the same seed, the same figures
    luffy = json.loads((tmp_path / "one" / "compare.json").read_text())["differences"][0]["benchmarks"]["aime24"]["luffy"]
    assert luffy["difference"] == 0 and luffy["low"] < 0 < luffy["high"] and not luffy["significant"]
    assert len(luffy["flips"]["gained"]) == 2 and len(luffy["flips"]["lost"]) == 2


def test_samples_and_seeds_make_each_problems_score(tmp_path: Path) -> None:
    # avg@4 per problem, two seeds: the run's score is the mean over seeds, then problems.
    a = tmp_path / "a"
    write_run(a, {"amc": [[True, True, False, False]] * 10}, seed=0)
    write_run(a, {"amc": [[True, True, True, True]] * 10}, seed=1)
    b = write_run(tmp_path / "b", {"amc": [[True, False, False, False]] * 10})
    compare([a, b], tmp_path / "out")
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["runs"][0]["scores"]["amc"]["luffy"] == pytest.approx(0.75)
    assert result["differences"][0]["benchmarks"]["amc"]["luffy"]["difference"] == pytest.approx(0.25 - 0.75)


def test_the_six_benchmark_avg_is_recomputed_with_its_interval(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {b: column([i < 10 for i in range(30)]) for b in MATH_BENCHMARKS})
    b = write_run(tmp_path / "b", {b: column([i < 10 + k for i in range(30)]) for k, b in enumerate(MATH_BENCHMARKS)})
    text = compare([a, b], tmp_path / "out")
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    avg = result["differences"][0]["avg"]["luffy"]
    assert avg["difference"] == pytest.approx(sum(range(6)) / 6 / 30)
    assert avg["low"] <= avg["difference"] <= avg["high"]
    assert result["runs"][0]["avg"]["luffy"] == pytest.approx(1 / 3)
    assert "| Avg. (six math) |" in text


def test_published_rows_say_when_their_avg_is_not_the_mean(tmp_path: Path) -> None:
    rows = {row.label: row for row in reference_rows("card:luffy-qwen-math-1.5b-zero")}
    luffy = rows["LUFFY-1.5B-Zero (card)"]
    assert luffy.avg == 42.1 and round(luffy.mean_of_six(), 1) == 37.2
    assert luffy.avg_note() == "published Avg. 42.1 is not the mean of its six numbers (37.2)"
    assert rows["Qwen2.5-Math-1.5B-Base (card)"].avg_note() is None  # 17.3 is its mean
    labels = {"math500": column([True, False])}
    a, b = write_run(tmp_path / "a", labels), write_run(tmp_path / "b", labels)
    text = compare([a, b], tmp_path / "out", list(rows.values()))
    assert "| LUFFY-1.5B-Zero (card) † | 15.2 | 12.7 | 46.8 | 79.4 | 26.5 | 42.4 | 42.1 | published Avg. 42.1" in text
    assert "huggingface.co/Elliott/LUFFY-Qwen-Math-1.5B-Zero" in text
    with pytest.raises(ValueError, match="known: card:luffy-qwen-math-1.5b-zero"):
        reference_rows("card:nobody")


def test_another_dataset_variant_is_not_compared(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"math500": column([True]), "amc": column([True])})
    b = tmp_path / "b"
    write_run(b, {"math500": column([False])}, variant="other.parquet")
    with pytest.raises(HarnessError, match="share no comparable benchmark .*math500: another dataset variant"):
        compare([a, b], tmp_path / "out")
    write_run(b, {"amc": column([False])}, seed=1)  # now amc is shared (same variant): math500 is flagged
    write_run(b, {"gpqa": column([True])}, seed=2)  # and a benchmark the first run does not have
    text = compare([a, b], tmp_path / "out")
    assert "Not compared: math500 of `b` (another dataset variant" in text
    assert "gpqa of `b` (not in the first run)" in text


def test_cli_writes_the_three_files_and_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"math500": column([True, False, True])})
    b = write_run(tmp_path / "b", {"math500": column([True, True, True])})
    done = run_cli("benchmarks", ["compare", str(a), str(b), "--against", "card:luffy-qwen-math-1.5b-zero"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| MATH-500 | 3 | 66.7 | 100.0 |" in done.stdout
    assert sorted(p.name for p in (a / "compare").iterdir()) == ["compare.json", "compare.md", "compare.png"]
    ungraded = tmp_path / "c"
    ungraded.mkdir()
    (ungraded / "generations.seed0.jsonl").write_text(json.dumps({"benchmark": "math500", "problem": "0",
                                                                  "sample": 0, "gold": "1"}) + "\n")
    for args, message in [((str(a),), "compare needs at least two runs"),
                          ((str(a), str(b), "--against", "card:x"), "--against: unknown reference 'card:x'"),
                          ((str(a), str(b), "--resamples", "10"), "must be at least 1000"),
                          ((str(a), str(ungraded)), "1 samples are not graded yet"),
                          ((str(a), str(tmp_path / "missing")), "no such file or directory")]:
        line = refusal(run_cli("benchmarks", ["compare", *args], tmp_path, forbid=("vllm", "torch")), tmp_path)
        assert message in line, (args, line)


def test_a_failed_writer_leaves_the_previous_files_whole(tmp_path: Path) -> None:
    """report and compare write their three files through replace_together: all new, or all as before."""
    from benchmarks.store import replace_together

    old = {tmp_path / name: f"old {name}" for name in ("x.md", "x.json", "x.png")}
    for path, text in old.items():
        path.write_text(text)

    def broken_chart(path: Path) -> None:
        path.write_text("half a chart")
        raise RuntimeError("matplotlib failed")

    with pytest.raises(RuntimeError):
        replace_together({tmp_path / "x.md": lambda p: p.write_text("new"),
                          tmp_path / "x.json": lambda p: p.write_text("new"), tmp_path / "x.png": broken_chart})
    assert {p: p.read_text() for p in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.md", "x.png"]  # no temporary file left
    replace_together({path: (lambda p: p.write_text("new")) for path in old})
    assert {p.read_text() for p in old} == {"new"}


def test_report_reads_a_config_that_leaves_out_the_sampling(tmp_path: Path) -> None:
    """A store written by hand or an older harness: its config names only the dataset; the report says "?"."""
    run = write_run(tmp_path / "run", {"math500": column([True, False])})
    configs = json.loads((run / "configs.json").read_text())
    (run / "configs.json").write_text(json.dumps({h: {k: c[k] for k in ("benchmark", "variant", "data")}
                                                  for h, c in configs.items()}))
    markdown = build(run)
    assert "model ? (?); template ?, temperature ?, top_p ?, max_tokens ?, seed ?" in markdown
    assert (run / "report.png").stat().st_size > 0


def test_published_rows_measured_otherwise_are_flagged_in_the_table_and_the_chart(tmp_path: Path) -> None:
    """A 3-problem, 64-token run beside the card's full-set, 8k-token, avg@32 rows: each row is marked, a footnote
    says what differs, and the chart draws the rows in colours of their own, marked in its legend. A row
    measured as the run was stays unmarked."""
    from benchmarks.compare import chart_figure, flag_rows, load_run, setting_differences
    from benchmarks.published import PublishedRow, Settings

    labels = {b: column([True, False, True]) for b in ("aime24", "math500")}
    a = write_run(tmp_path / "a", labels, max_tokens=64)
    (a / "runs.jsonl").write_text(json.dumps({"argv": ["run", "--limit", "3", "--max-tokens", "64"]}) + "\n")
    b = write_run(tmp_path / "b", labels, max_tokens=64)
    card = reference_rows("card:luffy-qwen-math-1.5b-zero")
    like_the_runs = Settings(0.6, 1.0, 64, dict.fromkeys(MATH_BENCHMARKS, 1), dict.fromkeys(MATH_BENCHMARKS, 3),
                             "measured as the runs were")
    same = PublishedRow("same settings", "a test", card[0].values, settings=like_the_runs)

    run = load_run(a, "a")
    assert setting_differences(run, card[0].settings) == [
        "max_tokens 64 (published 8192)", "samples per problem, run/published: AIME 24 1/32",
        "problems, run/published (--limit 3): AIME 24 3/30, MATH-500 3/500"]
    assert setting_differences(run, like_the_runs) == []

    text = compare([a, b], tmp_path / "out", [*card, same])
    assert "| LUFFY-1.5B-Zero (card) † | 15.2 |" in text and "| same settings | 7.9 |" in text
    assert ("† Measured otherwise than the runs. `a`: max_tokens 64 (published 8192); samples per problem, "
            "run/published: AIME 24 1/32; problems, run/published (--limit 3): AIME 24 3/30, MATH-500 3/500. "
            "`b`: max_tokens 64 (published 8192); samples per problem") in text
    assert "Published: temperature 0.6, top_p 1.0, max_tokens 8192; n 32 on AIME 24, AIME 25, AMC" in text
    references = json.loads((tmp_path / "out" / "compare.json").read_text())["references"]
    assert references[0]["differs"]["a"][0] == "max_tokens 64 (published 8192)" and references[-1]["differs"] == {}

    runs = [run, load_run(b, "b")]
    assert set(flag_rows(runs, [*card, same])) == {row.label for row in card}
    fig = chart_figure(runs, [*card, same])
    try:
        (ax,) = fig.axes
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[:2] == ["a", "b"]  # the runs' bars, then one entry per published row
        assert legend[2:] == [f"{row.label} †" for row in card] + ["same settings"]
        points = ax.collections  # one scatter per published row
        colours = [tuple(c.get_edgecolor()[0]) if c.get_facecolor().size == 0 else tuple(c.get_facecolor()[0])
                   for c in points]
        assert len(points) == len(card) + 1 and len(set(colours)) == len(points)  # each row its own colour
        assert all(c.get_facecolor().size == 0 for c in points[:-1]) and points[-1].get_facecolor().size  # hollow
        footnote = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
        assert footnote.startswith("† Measured otherwise than the runs.") and "max_tokens 64 (published 8192)" in footnote
    finally:
        plt.close(fig)


# Out of the paper's order on purpose, with two benchmarks the registry does not know.
LABELS = {"zeta": column([True]), "math500": column([True, False]), "gpqa": column([False]),
          "aime24": column([True, True]), "alpha": column([False, True]), "amc": column([False])}
PAPER_ORDER = ["AIME 24", "AMC", "MATH-500", "GPQA-diamond", "alpha", "zeta"]


def reordered(run: Path) -> None:
    """The same run stored in the reverse order: samples, configs.json keys."""
    store = run / "generations.seed0.jsonl"
    store.write_text("\n".join(reversed(store.read_text().splitlines())) + "\n")
    configs = json.loads((run / "configs.json").read_text())
    (run / "configs.json").write_text(json.dumps(dict(reversed(configs.items()))))


def test_the_report_is_in_the_papers_order_whatever_the_stored_order(tmp_path: Path) -> None:
    first = build(write_run(tmp_path / "one", LABELS))
    second_run = write_run(tmp_path / "two", dict(reversed(LABELS.items())))
    reordered(second_run)
    second = build(second_run)
    assert first.replace("/one", "/two") == second
    assert (tmp_path / "one" / "report.json").read_text() == (second_run / "report.json").read_text()
    setup = second.split("## Setup")[1].splitlines()
    titles = [line[2:].split(":")[0] for line in setup if line.startswith("- ") and "; model " in line]
    assert titles == PAPER_ORDER
    details = second.split("## Details (grader: luffy)")[1].split("##")[0].splitlines()
    assert [row.split(" | ")[0][2:] for row in details[3:] if row.startswith("| ")] == PAPER_ORDER
    fig = chart_figure(metrics.compute(read_records(second_run)), "caption")
    try:
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == PAPER_ORDER
    finally:
        plt.close(fig)


def test_a_report_chart_where_every_score_is_0_keeps_its_axes_and_says_so(tmp_path: Path) -> None:
    run = write_run(tmp_path / "zero", {"math500": column([False, False]), "aime24": column([False])})
    build(run)
    assert (run / "report.png").stat().st_size > 0
    records = read_records(run)
    fig = chart_figure(metrics.compute(records), "caption")
    try:
        (ax,) = fig.axes
        assert ax.axison and ax.get_ylim() == (0, 100)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["AIME 24", "MATH-500"]
        assert ALL_ZERO_NOTE in [t.get_text() for t in ax.texts]
    finally:
        plt.close(fig)
    records[0]["grades"]["math_verify"]["correct"] = True  # one score above 0: no note
    fig = chart_figure(metrics.compute(records), "caption")
    try:
        assert ALL_ZERO_NOTE not in [t.get_text() for t in fig.axes[0].texts]
    finally:
        plt.close(fig)
