"""The Gradio page: ask a math question, watch the model think, see (and check) its boxed answer.

``build_demo`` is what ``python -m app`` serves; ``mount`` is what ``luffy-serve --demo`` calls to put the same
page at /demo of its own routes (the server imports no gradio itself).
No custom CSS or theme: a page mounted with ``gradio.mount_gradio_app`` gets neither.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, before gradio is imported

import gradio as gr  # noqa: E402

from app.client import Completion, Endpoint, EndpointError, GradeReport  # noqa: E402
from app.examples import BENCHMARK_EXAMPLES  # noqa: E402
from luffy_math.vote import TIE, Majority  # noqa: E402

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]
THINKING_TITLE = "Thinking"
DEFAULT_TEMPERATURE = 0.6  # LUFFY's evaluation setting
DEFAULT_MAX_TOKENS = 8192  # LUFFY's evaluation setting
CONCURRENT_CHATS = 16  # Gradio's default is one at a time for the whole page
PROMPT_ROOM = 512  # tokens kept for the prompt when the context is shorter than the max tokens asked
Message = gr.ChatMessage | dict[str, Any]


def _boxed(answer: str) -> str:
    return f"$\\boxed{{{answer}}}$"


def answer_summary(completion: Completion) -> str:
    """The highlighted final answer; with several samples, each sample's answer and the majority."""
    if len(completion.samples) == 1:
        answer = completion.samples[0].answer
        return f"**Final answer:** {_boxed(answer)}" if answer is not None else "**No boxed answer.**"
    answers = [s.answer for s in completion.samples]
    listed = ", ".join(f"`{a}`" if a is not None else "—" for a in answers)
    vote = completion.majority
    majority = completion.majority_answer
    if majority is None:
        if vote.reason == "timed_out":
            return f"**The vote did not finish in time** ({listed})."
        return f"**No sample gave a boxed answer** ({listed})."
    samples = f"Samples: {listed} (the chat shows sample 1)"
    if vote.reason == TIE:
        return f"{tie_line(vote, len(answers))}\n\n{samples}"
    votes = vote.counts.get(majority, sum(a == majority for a in answers))
    return f"**Majority answer** ({votes} of {len(answers)} samples): {_boxed(majority)}\n\n{samples}"


def tie_line(vote: Majority, samples: int) -> str:
    """A tie said plainly: the tied answers with their votes, and which one the tie rule takes."""
    tied = ", ".join(f"`{answer}` ({count})" for answer, count in vote.tied.items())
    return (f"**Tie: no majority** among {samples} samples: {tied} share the most votes; the first seen, "
            f"{_boxed(vote.answer)}, is taken as the answer.")


def grade_summary(report: GradeReport, completion: Completion, gold: str) -> str:
    """One line saying whether the (majority) answer matches the gold, and how it was decided."""
    where = "" if report.by_server else " (graded locally: the endpoint has no /v1/grade)"
    if len(report.grades) == 1:
        g = report.grades[0]
        mark = "**Correct**" if g.correct else "**Incorrect**"
        return f"{mark} against gold {_boxed(gold)} (decided by {g.decided_by}){where}"
    right = sum(g.correct for g in report.grades)
    majority = report.majority_answer or completion.majority_answer
    voted = next((g for g, s in zip(report.grades, completion.samples, strict=True)
                  if majority is not None and s.answer == majority), None)
    mark = "**Majority correct**" if voted and voted.correct else "**Majority incorrect**"
    if report.majority.reason == TIE:
        mark += " (a tie, decided by the first seen of the tied answers)"
    return f"{mark} against gold {_boxed(gold)}; {right} of {len(report.grades)} samples correct{where}"


def _finish_thinking(message: gr.ChatMessage, started: float) -> None:
    if message.metadata.get("status") == "pending":
        message.metadata["status"] = "done"
        message.metadata["duration"] = round(time.monotonic() - started, 1)


def mark_stopped(history: list[Message]) -> list[Message]:
    """After Stop: close any open thinking block and say that the answer was cut short."""
    for message in history:
        metadata = message.get("metadata") if isinstance(message, dict) else message.metadata
        if metadata and metadata.get("status") == "pending":
            metadata["status"] = "done"
    return [*history, gr.ChatMessage(role="assistant", content="*Stopped.*")]


def build_demo(base_url: str, api_key: str | None = None, model: str | None = None,
               max_tokens: int = DEFAULT_MAX_TOKENS) -> gr.Blocks:
    """The demo page streaming from the OpenAI-compatible endpoint at ``base_url`` (with or without /v1)."""
    endpoint = Endpoint(base_url, api_key=api_key, model=model)

    async def endpoint_status(current_max_tokens: float) -> tuple[str, Any]:
        """Say whether the endpoint answers, and fit the Max tokens slider to the model's context."""
        try:
            served, context = await endpoint.describe()
        except EndpointError as exc:
            return f"**Endpoint down.** {exc}", gr.skip()
        status = f"**Connected** to `{served}` at {endpoint.root}"
        if not context:
            return status, gr.skip()
        room = max(16, context - PROMPT_ROOM)  # what is left for the reply after a typical prompt
        return status, gr.update(maximum=context, value=min(int(current_max_tokens), room))

    async def respond(question: str, history: list[Message], temperature: float, max_new_tokens: float,
                      n: float, gold: str, seed: float | None = None) -> AsyncIterator[tuple[list[Message], str, str]]:
        question = question.strip()
        if not question:
            yield history, "", gr.skip()
            return
        history = [*history, gr.ChatMessage(role="user", content=question)]
        thinking = gr.ChatMessage(role="assistant", content="",
                                  metadata={"title": THINKING_TITLE, "status": "pending"})
        answer = gr.ChatMessage(role="assistant", content="")
        history += [thinking, answer]
        yield history, "", ""
        started = time.monotonic()
        completion: Completion | None = None
        try:
            async for completion in endpoint.stream_chat(question, temperature=float(temperature),
                                                         max_tokens=int(max_new_tokens), n=int(n),
                                                         seed=None if seed is None else int(seed)):
                thought, text = completion.samples[0].parts()
                thinking.content, answer.content = thought, text
                if text.strip():
                    _finish_thinking(thinking, started)
                yield history, "", gr.skip()
        except EndpointError as exc:
            history = [m for m in history if not (m is thinking or m is answer) or m.content]
            _finish_thinking(thinking, started)
            history.append(gr.ChatMessage(role="assistant", content=f"**Error.** {exc}"))
            yield history, "", f"**Error.** {exc}"
            return
        _finish_thinking(thinking, started)
        if completion is None:  # the stream closed without a single chunk
            return
        if not thinking.content:
            history = [m for m in history if m is not thinking]
        if completion.samples[0].finish_reason == "length":
            answer.content += "\n\n*(cut off at the max-tokens limit)*"
        summary = answer_summary(completion)
        if gold.strip():
            try:
                report = await endpoint.grade([s.parts()[1] for s in completion.samples], gold.strip())
                summary += "\n\n" + grade_summary(report, completion, gold.strip())
            except EndpointError as exc:
                summary += f"\n\n**Could not grade.** {exc}"
        history.append(gr.ChatMessage(role="assistant", content=summary))
        yield history, "", summary

    with gr.Blocks(title="LUFFY demo", analytics_enabled=False) as demo:
        gr.Markdown("# LUFFY: a math reasoning model\nAsk a question; the model thinks first, then boxes its "
                    "answer. Each question is sent on its own, without a system prompt, as in LUFFY's "
                    "evaluation.")
        status = gr.Markdown("Checking the endpoint…", elem_id="endpoint-status")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=560,
                                     latex_delimiters=LATEX_DELIMITERS, buttons=["copy"])
                question = gr.Textbox(placeholder="Ask a math question and press Enter…", show_label=False,
                                      elem_id="question", lines=1, max_lines=8)
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    clear = gr.Button("Clear", elem_id="clear")
            with gr.Column(scale=2):
                final = gr.Markdown("", elem_id="final-answer", latex_delimiters=LATEX_DELIMITERS)
                gold = gr.Textbox(label="Check against (gold answer, optional)", elem_id="gold",
                                  placeholder="e.g. 204 — graded by the server's /v1/grade")
                with gr.Accordion("Sampling", open=True):
                    temperature = gr.Slider(0.0, 1.5, value=DEFAULT_TEMPERATURE, step=0.05,
                                            label="Temperature", elem_id="temperature")
                    max_new_tokens = gr.Slider(16, max(DEFAULT_MAX_TOKENS, max_tokens), value=max_tokens,
                                               step=16, label="Max tokens", elem_id="max-tokens")
                    samples = gr.Slider(1, 16, value=1, step=1, label="Samples n (majority vote when n > 1)",
                                        elem_id="samples")
                    seed = gr.Number(None, precision=0, label="Seed (optional: the same seed, the same samples)",
                                     elem_id="seed")
        gr.Examples([[problem, gold] for _, problem, gold in BENCHMARK_EXAMPLES], inputs=[question, gold],
                    example_labels=[label for label, _, _ in BENCHMARK_EXAMPLES],
                    label="Problems from the benchmarks (with gold answers)")

        inputs = [question, chatbot, temperature, max_new_tokens, samples, gold, seed]
        outputs = [chatbot, question, final]
        # Several visitors may generate at once: the engine batches their requests.
        runs = [event(respond, inputs, outputs, concurrency_limit=CONCURRENT_CHATS)
                for event in (question.submit, send.click)]
        stop.click(mark_stopped, [chatbot], [chatbot], cancels=runs)
        clear.click(lambda: ([], "", ""), None, [chatbot, question, final], cancels=runs)
        demo.load(endpoint_status, max_new_tokens, [status, max_new_tokens])
    # The page works through Gradio's queue; direct POSTs to /run and /api (which skip the queue's concurrency
    # limits and answered 500 to malformed data) are refused.
    demo.queue(api_open=False)
    return demo


# Gradio routes under a mounted page that Gradio serves without its login (the rest check it, and the login
# page with its stylesheet must stay open): a server with a key guards these itself.
UNGUARDED_ROUTES = ("/gradio_api/heartbeat/", "/gradio_api/startup-events")
LOGIN_COOKIES = ("access-token", "access-token-unsecure")  # Gradio's login cookies, suffixed with its cookie id


@dataclass(frozen=True)
class MountedDemo:
    """What ``mount`` gives the server: its routes with the page mounted, and what the login leaves to it."""

    routes: Any  # the FastAPI app passed to ``mount``, the page at ``path``
    path: str
    gradio_app: Any  # the mounted Gradio app

    @property
    def unguarded(self) -> tuple[str, ...]:
        """Paths (prefixes) under the page that Gradio answers without its login."""
        return tuple(self.path + route for route in UNGUARDED_ROUTES)

    def logged_in(self, cookies: Mapping[str, str]) -> bool:
        """Whether a request's cookies carry a login of the page (what Gradio's own routes check)."""
        cookie_id = getattr(self.gradio_app, "cookie_id", "")
        tokens = getattr(self.gradio_app, "tokens", {})
        return any(cookies.get(f"{name}-{cookie_id}") in tokens for name in LOGIN_COOKIES)


def mount(routes: Any, base_url: str, api_key: str | None = None, model: str | None = None, path: str = "/demo",
          login: Callable[[str, str], bool] | None = None, login_message: str | None = None) -> MountedDemo:
    """Build the page against the endpoint at ``base_url`` and mount it at ``path`` of the FastAPI app
    ``routes``. ``login(user, password)``: Gradio's login in front of the page and its API (None: open)."""
    demo = build_demo(base_url, api_key=api_key, model=model)
    routes = gr.mount_gradio_app(routes, demo, path=path, auth=login,
                                 auth_message=login_message if login else None)
    gradio_app = next(r.app for r in routes.routes if getattr(r, "path", None) == path)
    return MountedDemo(routes, path, gradio_app)
