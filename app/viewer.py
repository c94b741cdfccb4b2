"""``python -m app.viewer RUN [RUN ...]``: a harness run in the browser, benchmarks -> problems -> samples.

Filters (benchmark, verdict per grader, graders disagree, truncated, grader timeout, answer text) narrow the
problem table; a problem's sample shows the gold, each grader's extracted answer, verdict and ``decided_by``,
the answer part LUFFY grades, and the thought in a collapsed block. A second run shows the same problem side
by side. The Report tab shows the run's report.md and chart. "Reload" re-reads the store (a run may still be
writing it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from benchmarks.problems import HarnessError  # noqa: E402
from luffy_util import arg_types  # noqa: E402

NONE = "(none)"
# Gradio's Markdown breaks table words anywhere ("Benchmar|k"): keep words whole and let a wide table scroll
# (the report's and each sample's facts). Headers in the system's sans: the semibold Source Sans Pro that
# Gradio ships draws A and B from another face.
TABLE_CSS = """
:is(#report, #facts-a, #facts-b) table { display: block; overflow-x: auto; border: none; word-break: normal;
    overflow-wrap: normal; }
:is(#report, #facts-a, #facts-b) :is(th, td) { word-break: keep-all; overflow-wrap: normal; hyphens: none; }
:is(#report, #facts-a, #facts-b) th { white-space: nowrap; font-family: ui-sans-serif, system-ui, sans-serif; }
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.viewer", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories written by `python -m benchmarks run`")
    parser.add_argument("--host", type=arg_types.host, default="127.0.0.1")
    parser.add_argument("--port", type=arg_types.port, default=7861)
    return parser.parse_args(argv)


def build_viewer(paths: list[Path]):
    import gradio as gr

    from app.demo import LATEX_DELIMITERS
    from app.runs import FILTERS, RunView, sample_markdown, shown_parts

    runs = {}
    for path in paths:
        view = RunView.open(path)
        runs[view.name if view.name not in runs else f"{view.name} ({len(runs) + 1})"] = view
    names = list(runs)

    def benchmarks_of(name: str) -> list[str]:
        return runs[name].benchmarks() if name in runs else []

    def table(name: str, benchmark: str, verdict: str, text: str):
        rows = runs[name].problem_rows(benchmark, verdict, text) if name in runs else []
        problems = [row[0] for row in rows]
        headers = runs[name].table_headers() if name in runs else ["problem", "gold", "samples shown"]
        return (gr.update(value=rows, headers=headers), gr.update(choices=problems, value=problems[0] if problems else None),
                f"{len(rows)} of {len(runs[name].problems.get(benchmark, {})) if name in runs else 0} problems")

    def sample_view(name: str, benchmark: str, problem: str | None, index: int, verdict: str, text: str):
        """(facts, answer part, thought, sample choices) of a run's sample; a run without the problem says so."""
        empty = ("", "", "", gr.update(choices=[], value=None))
        if name not in runs or not problem:
            return empty
        run = runs[name]
        chosen = run.matching(benchmark, verdict, text).get(problem) or run.samples(benchmark, problem)
        if not chosen:
            return (f"*{name} has no samples of {benchmark} problem {problem}.*", "", "",
                    gr.update(choices=[], value=None))
        index = min(max(int(index or 0), 0), len(chosen) - 1)
        sample = chosen[index]
        answer, thought = shown_parts(sample)
        choices = [(s.label, i) for i, s in enumerate(chosen)]
        return f"**{name}** · " + sample_markdown(sample), answer, thought, gr.update(choices=choices, value=index)

    def prompt_of(benchmark: str, problem: str | None) -> str:
        for run in runs.values():
            samples = run.samples(benchmark, problem) if problem else []
            if samples:
                return samples[0].record.get("prompt") or ""
        return ""

    def report_of(name: str):
        run_dir = runs[name].path if name in runs else None
        md = run_dir / "report.md" if run_dir else None
        png = run_dir / "report.png" if run_dir else None
        return (md.read_text() if md and md.exists() else "*No report yet: `python -m benchmarks report RUN`.*",
                str(png) if png and png.exists() else None)

    with gr.Blocks(title="LUFFY results viewer") as viewer:
        gr.Markdown("# LUFFY results viewer")
        with gr.Row():
            run_a = gr.Dropdown(names, value=names[0], label="Run", elem_id="run-a")
            run_b = gr.Dropdown([NONE, *names], value=NONE, label="Side by side with", elem_id="run-b")
            reload = gr.Button("Reload", elem_id="reload", scale=0)
        with gr.Tab("Samples"):
            with gr.Row():
                benchmark = gr.Dropdown(benchmarks_of(names[0]), value=(benchmarks_of(names[0]) or [None])[0],
                                        label="Benchmark", elem_id="benchmark")
                verdict = gr.Dropdown(list(FILTERS), value="all samples", label="Samples", elem_id="verdict")
                text = gr.Textbox(label="Answer contains", elem_id="answer-text")
            count = gr.Markdown(elem_id="count")
            problems = gr.Dataframe(headers=runs[names[0]].table_headers(), interactive=False, elem_id="problems", wrap=True)
            with gr.Row():
                problem = gr.Dropdown([], label="Problem", elem_id="problem")
                sample_a = gr.Dropdown([], label="Sample", elem_id="sample-a", type="value")
            prompt = gr.Markdown(elem_id="prompt", latex_delimiters=LATEX_DELIMITERS)
            with gr.Row():
                with gr.Column(elem_id="view-a"):
                    facts_a = gr.Markdown(elem_id="facts-a")
                    answer_a = gr.Markdown(elem_id="answer-a", latex_delimiters=LATEX_DELIMITERS)
                    with gr.Accordion("Thinking", open=False, elem_id="thinking-a"):
                        thought_a = gr.Markdown(elem_id="thought-a", latex_delimiters=LATEX_DELIMITERS)
                with gr.Column(elem_id="view-b", visible=False) as column_b:
                    sample_b = gr.Dropdown([], label="Sample (second run)", elem_id="sample-b", type="value")
                    facts_b = gr.Markdown(elem_id="facts-b")
                    answer_b = gr.Markdown(elem_id="answer-b", latex_delimiters=LATEX_DELIMITERS)
                    with gr.Accordion("Thinking", open=False, elem_id="thinking-b"):
                        thought_b = gr.Markdown(elem_id="thought-b", latex_delimiters=LATEX_DELIMITERS)
        with gr.Tab("Report"):
            report_md = gr.Markdown(elem_id="report")
            report_png = gr.Image(label="Chart", elem_id="report-chart", interactive=False)

        filters = [run_a, benchmark, verdict, text]

        def show_a(name, bench, prob, index, verd, txt):
            return sample_view(name, bench, prob, index, verd, txt)

        def show_b(name, bench, prob, index, verd, txt):
            visible = gr.update(visible=name != NONE)
            if name == NONE:
                return ("", "", "", gr.update(choices=[], value=None), visible)
            return (*sample_view(name, bench, prob, index, "all samples", ""), visible)

        outputs_a = [facts_a, answer_a, thought_a, sample_a]
        outputs_b = [facts_b, answer_b, thought_b, sample_b, column_b]

        def on_run(name):
            choices = benchmarks_of(name)
            return gr.update(choices=choices, value=choices[0] if choices else None)

        def on_reload(name, bench, verd, txt):
            for run in runs.values():
                run.reload()
            return table(name, bench, verd, txt)

        def first_of_a(name, bench, prob, verd, txt):
            return show_a(name, bench, prob, 0, verd, txt)

        def first_of_b(name, bench, prob, verd, txt):
            return show_b(name, bench, prob, 0, verd, txt)

        view_a_inputs = [run_a, benchmark, problem, verdict, text]
        view_b_inputs = [run_b, benchmark, problem, verdict, text]

        def then_show(event):
            """After the problem (or its filters) changed: the prompt and both views, from their first sample."""
            (event.then(prompt_of, [benchmark, problem], prompt)
                  .then(first_of_a, view_a_inputs, outputs_a)
                  .then(first_of_b, view_b_inputs, outputs_b))

        run_a.change(on_run, run_a, benchmark)
        run_a.change(report_of, run_a, [report_md, report_png])
        for control in (benchmark, verdict, text):
            then_show(control.change(table, filters, [problems, problem, count]))
        then_show(reload.click(on_reload, filters, [problems, problem, count]))
        then_show(problem.input(lambda: None, None, None))
        sample_a.input(show_a, [run_a, benchmark, problem, sample_a, verdict, text], outputs_a)
        sample_b.input(show_b, [run_b, benchmark, problem, sample_b, verdict, text], outputs_b)
        run_b.change(first_of_b, view_b_inputs, outputs_b)
        then_show(viewer.load(table, filters, [problems, problem, count]))
        viewer.load(report_of, run_a, [report_md, report_png])
    return viewer


def fail(message: str) -> None:
    print(f"python -m app.viewer: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from benchmarks.store import generation_files

    for path in args.runs:  # before gradio loads: a wrong path is one line
        try:
            generation_files(path)
        except HarnessError as exc:
            fail(str(exc))
    try:
        viewer = build_viewer(args.runs)
    except HarnessError as exc:  # an unreadable store
        fail(str(exc))
    try:
        viewer.queue().launch(server_name=args.host, server_port=args.port, share=False, ssr_mode=False, quiet=True,
                              css=TABLE_CSS, prevent_thread_lock=True)
    except OSError as exc:
        fail(f"cannot listen on {args.host}:{args.port}: {exc}")
    print(started_lines(viewer.local_url, args.runs), flush=True)
    viewer.block_thread()


def started_lines(url: str, runs: list[Path]) -> str:
    """What the viewer says once it listens: where to open it and which run directories it reads."""
    lines = [f"LUFFY results viewer at {url} (Ctrl-C stops it)"]
    lines += [f"  reading {path.resolve()}" for path in runs]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
