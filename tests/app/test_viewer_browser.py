"""The results viewer in a real browser (Debian Chromium, headless): filters, the sample view with its
collapsed thought, two runs side by side, the report tab. Screenshots go to artifacts/."""

from __future__ import annotations

from pathlib import Path

from browser import keep_screenshot
from playwright.sync_api import Page, expect


def choose(page: Page, elem_id: str, option: str) -> None:
    """Pick an option of a Gradio dropdown, as a user does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_filters_narrow_the_problems_and_a_sample_shows_its_verdicts(viewer, page: Page, tmp_path: Path) -> None:
    page.goto(viewer.url)
    count = page.locator("#count")
    expect(count).to_contain_text("1 of 1 problems", timeout=30_000)  # AIME 24 comes first (the paper's order)
    choose(page, "benchmark", "math500")
    expect(count).to_contain_text("3 of 3 problems")
    choose(page, "verdict", "graders disagree")
    expect(count).to_contain_text("1 of 3 problems")
    expect(page.locator("#problems")).to_contain_text("42")
    facts = page.locator("#facts-a")
    expect(facts).to_contain_text("luffy")
    expect(facts).to_contain_text("wrong")  # no box: the luffy grader refuses it
    expect(facts).to_contain_text("correct")  # Math-Verify reads the bare 42
    expect(page.locator("#answer-a")).to_contain_text("The answer is 42.")
    thought = page.locator("#thought-a")
    expect(thought).to_be_hidden()  # the thought is collapsed until asked for
    page.locator("#thinking-a").get_by_text("Thinking").click()
    expect(thought).to_contain_text("Let me think step by step")
    keep_screenshot(page, tmp_path, "viewer-sample.png")

    choose(page, "verdict", "all samples")
    page.locator("#answer-text textarea, #answer-text input").first.fill("0.5")
    expect(count).to_contain_text("1 of 3 problems")
    choose(page, "benchmark", "aime24")
    page.locator("#answer-text textarea, #answer-text input").first.fill("")
    choose(page, "verdict", "truncated")
    expect(count).to_contain_text("1 of 1 problems")
    expect(page.locator("#facts-a")).to_contain_text("finish: length")
    expect(page.locator("#answer-a")).to_contain_text("Still thinking")


def test_two_runs_side_by_side_and_the_report(viewer, page: Page, tmp_path: Path) -> None:
    page.goto(viewer.url)
    expect(page.locator("#count")).to_contain_text("1 of 1 problems", timeout=30_000)
    choose(page, "benchmark", "math500")
    expect(page.locator("#count")).to_contain_text("3 of 3 problems")
    expect(page.locator("#view-b")).to_be_hidden()
    choose(page, "run-b", "tuned")
    expect(page.locator("#view-b")).to_be_visible()
    expect(page.locator("#facts-a")).to_contain_text("correct")  # base answered 42 to problem 0
    expect(page.locator("#answer-b")).to_contain_text("24")  # tuned answered 24 to the same problem
    expect(page.locator("#facts-b")).to_contain_text("wrong")
    keep_screenshot(page, tmp_path, "viewer-side-by-side.png")

    page.get_by_role("tab", name="Report").click()
    expect(page.locator("#report")).to_contain_text("LUFFY evaluation")
    expect(page.locator("#report-chart img")).to_be_visible()
    keep_screenshot(page, tmp_path, "viewer-report.png")


LINES_PER_CELL = """() => Array.from(document.querySelectorAll('#report th, #report td')).map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    return [cell.tagName, cell.innerText.trim(), tops.size];
})"""


def test_the_report_tables_keep_their_words_whole(viewer, page: Page, tmp_path: Path) -> None:
    """At a laptop's width the report's ten-column tables used to break headers and numbers mid-word
    ("Bench/mark", "100./0"): every header now takes one line, and no cell more lines than it has words."""
    page.set_viewport_size({"width": 800, "height": 1000})
    page.goto(viewer.url)
    expect(page.locator("#count")).to_contain_text("1 of 1 problems", timeout=30_000)
    page.get_by_role("tab", name="Report").click()
    expect(page.locator("#report")).to_contain_text("Details (grader: luffy)")
    cells = page.evaluate(LINES_PER_CELL)
    headers = [(text, lines) for tag, text, lines in cells if tag == "TH"]
    assert ("Benchmark", 1) in headers and ("grader timeouts", 1) in headers
    assert [h for h in headers if h[1] != 1] == []
    assert [c for c in cells if c[0] == "TD" and c[2] > len(c[1].split())] == []
    keep_screenshot(page, tmp_path, "viewer-report-narrow.png")
