"""The demo in a real browser (Debian Chromium, headless) against the session's luffy-serve."""

from __future__ import annotations

import re
from pathlib import Path

from browser import keep_screenshot
from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What is 6*7?"  # greedy, the tiny checkpoint answers this one with a boxed 42

# Records every distinct text the chat shows, so the test can tell a stream from one final paint.
WATCH_CHAT = """() => {
  window.chatTexts = [];
  const chat = document.querySelector('#chat');
  new MutationObserver(() => {
    const text = chat.innerText;
    if (window.chatTexts[window.chatTexts.length - 1] !== text) window.chatTexts.push(text);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def set_number(page: Page, elem_id: str, value: str) -> None:
    """Type into a slider's number box, as a user would."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Tab")


def test_question_streams_thinking_and_boxed_answer(demo, page: Page, tmp_path: Path) -> None:
    page.goto(demo.url)
    expect(page.locator("#endpoint-status")).to_contain_text("Connected to tiny", timeout=30_000)
    # The Max tokens slider was fitted to the served context (the fixture's --max-model-len 1024).
    expect(page.locator("#max-tokens input[type=number]")).to_have_attribute("max", "1024")
    set_number(page, "temperature", "0")
    page.locator("#gold input, #gold textarea").first.fill("42")
    page.evaluate(WATCH_CHAT)
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#question textarea").press("Enter")

    final = page.locator("#final-answer")
    expect(final).to_contain_text("Final answer", timeout=120_000)
    expect(final).to_contain_text("Correct against gold")
    chat = page.locator("#chat")
    expect(chat).to_contain_text(QUESTION)
    expect(chat).to_contain_text("Thinking")  # the collapsible reasoning block's title
    expect(chat).to_contain_text("The answer is")
    # The boxed answer is rendered by KaTeX (an \fbox), not shown as raw LaTeX.
    expect(chat.locator(".katex .boxpad").first).to_have_text("42")
    expect(chat.locator(".katex .fbox").first).to_be_attached()
    assert "$\\boxed" not in chat.inner_text()
    # Streamed: the page showed several growing versions of the reply before the final one.
    texts: list[str] = page.evaluate("window.chatTexts")
    replies = {t for t in texts if QUESTION in t and "Final answer" not in t}
    assert len(replies) >= 3, texts
    keep_screenshot(page, tmp_path, "demo-chat.png")

    # The thinking block opens to show the model's reasoning.
    thinking = chat.get_by_role("button", name="Thinking")
    expect(thinking).to_have_count(1)
    thinking.click()
    expect(chat.get_by_text("Let me think")).to_be_visible()
    keep_screenshot(page, tmp_path, "demo-thinking-open.png")


def test_several_samples_give_a_majority_answer(demo, page: Page, tmp_path: Path) -> None:
    """Four samples at a low temperature with a seed: all four box the checkpoint's 42, deterministically."""
    page.goto(demo.url)
    expect(page.locator("#endpoint-status")).to_contain_text("Connected", timeout=30_000)
    set_number(page, "temperature", "0.2")
    set_number(page, "samples", "4")
    page.locator("#seed input").fill("7")
    page.locator("#gold input, #gold textarea").first.fill("42")
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#send").click()
    final = page.locator("#final-answer")
    expect(final).to_contain_text("4 of 4 samples correct", timeout=120_000)
    expect(final).to_contain_text("Majority answer (4 of 4 samples)")
    expect(final).to_contain_text("Majority correct")
    keep_screenshot(page, tmp_path, "demo-majority.png")


def test_example_fills_question_and_gold(demo, page: Page) -> None:
    page.goto(demo.url)
    page.get_by_text("AIME 2024: Aya's walk").click()
    expect(page.locator("#question textarea")).to_have_value(re.compile(r"^Every morning Aya"))
    expect(page.locator("#gold input, #gold textarea").first).to_have_value("204")


def test_down_endpoint_is_said_plainly(down_demo, page: Page, tmp_path: Path) -> None:
    page.goto(down_demo.url)
    expect(page.locator("#endpoint-status")).to_contain_text("Endpoint down", timeout=30_000)
    expect(page.locator("#endpoint-status")).to_contain_text("Cannot reach the model endpoint")
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#question textarea").press("Enter")
    chat = page.locator("#chat")
    expect(chat).to_contain_text("Cannot reach the model endpoint", timeout=30_000)
    expect(chat).not_to_contain_text("Thinking")  # no empty reasoning block left behind
    keep_screenshot(page, tmp_path, "demo-endpoint-down.png")
    assert down_demo.process.poll() is None  # the demo keeps running


def test_mounted_demo_asks_for_the_key(luffy_server, page: Page) -> None:
    """``luffy-serve --demo --api-key KEY``: the page shows Gradio's login first; the key as password opens it."""
    page.goto(f"{luffy_server.base_url}/demo/")
    page.get_by_label(re.compile("username", re.I)).fill("visitor")
    page.get_by_label(re.compile("password", re.I)).fill("wrong-key")
    page.get_by_role("button", name=re.compile("login", re.I)).click()
    expect(page.get_by_text(re.compile("incorrect credentials", re.I))).to_be_visible(timeout=30_000)
    page.goto(f"{luffy_server.base_url}/demo/")
    page.get_by_label(re.compile("username", re.I)).fill("visitor")
    page.get_by_label(re.compile("password", re.I)).fill(luffy_server.api_key)
    page.get_by_role("button", name=re.compile("login", re.I)).click()
    expect(page.locator("#endpoint-status")).to_contain_text("Connected to tiny", timeout=60_000)
