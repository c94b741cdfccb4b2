"""What the math layer reports, on the session's real servers through the official openai client and HTTP:
``usage.completion_tokens_details.reasoning_tokens`` counts the thought's tokens (both tokenizer shapes, chat
and completions, stream and not, n = 2), and ``/metrics`` carries the math layer's own metrics beside vLLM's
(grading latency, timed-out items, worker restarts, /v1/grade in flight and its 429s, votes by outcome)."""

from __future__ import annotations

import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from luffy_math.workers.pool import RESTART_REASONS
from luffy_testing.servers import openai_client_of

QUESTION = [{"role": "user", "content": "What is 20 + 22?"}]
PROMPT = "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n<think>\n"
# n > 1 needs sampling; a low temperature and a seed give the checkpoint's own text, reproducibly.
SAMPLING = dict(model="tiny", n=2, temperature=0.2, seed=3, max_tokens=40)
TOWERS = [r"\boxed{2^{2^{2^{2^{2^{100}}}}}}", r"\boxed{10^{10^{10^{10}}}}", r"\boxed{9^{9^{9^{9}}}}"]  # slow to grade


def auth(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def thought_tokens(server, thought: str, generated: list[int]) -> int:
    """The thought's tokens by the server's own tokenizer (/tokenize), checked to be how the choice began:
    the generated ids start with exactly these tokens, so the count is the thought's and nothing else."""
    reply = httpx.post(f"{server.base_url}/tokenize", headers=auth(server),
                       json={"model": "tiny", "prompt": thought, "add_special_tokens": False})
    tokens = reply.json()["tokens"]
    assert tokens and generated[: len(tokens)] == tokens, (thought, tokens, generated)
    return len(tokens)


def usage_of(chunks) -> dict:
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1, usages
    return usages[0].model_dump()


def test_reasoning_tokens_count_the_thought(any_server) -> None:
    client = openai_client_of(any_server)
    chat = client.chat.completions.create(messages=QUESTION, extra_body={"return_token_ids": True}, **SAMPLING)
    expected = sum(thought_tokens(any_server, c.message.model_extra["reasoning_content"], c.model_extra["token_ids"])
                   for c in chat.choices)
    assert expected > 0 and chat.usage.completion_tokens_details.reasoning_tokens == expected
    streamed = client.chat.completions.create(messages=QUESTION, stream=True,
                                              stream_options={"include_usage": True}, **SAMPLING)
    usage = usage_of(list(streamed))
    assert usage["completion_tokens"] == chat.usage.completion_tokens  # the same samples (seeded)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == expected

    # Completions have no reasoning split: the thought is what comes before the first </think>.
    text = client.completions.create(prompt=PROMPT, extra_body={"return_token_ids": True}, **SAMPLING)
    assert all("</think>" in c.text for c in text.choices)
    expected = sum(thought_tokens(any_server, c.text.split("</think>")[0], c.model_extra["token_ids"])
                   for c in text.choices)
    assert text.usage.completion_tokens_details.reasoning_tokens == expected
    usage = usage_of(list(client.completions.create(prompt=PROMPT, stream=True,
                                                    stream_options={"include_usage": True}, **SAMPLING)))
    assert usage["completion_tokens_details"]["reasoning_tokens"] == expected


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    text = httpx.get(f"{server.base_url}/metrics", headers=auth(server)).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grade(server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/grade", json=body, headers=auth(server), timeout=60)


def test_metrics_count_grading_votes_and_refusals(luffy_server) -> None:
    """A tie, a chat grade, and a flood of towers (they time out at the 4 s deadline, their workers are
    killed) during which the queue is full (429): each moves its counter in the scrape."""
    before = scrape(luffy_server)
    tie = grade(luffy_server, {"answers": ["24", "42"], "gold": "42"}).json()
    assert (tie["majority_answer"], tie["majority_reason"], tie["majority_counts"]) == ("24", "tie", {"24": 1, "42": 1})
    openai_client_of(luffy_server).chat.completions.create(model="tiny", messages=QUESTION, max_tokens=40,
                                                           temperature=0, extra_body={"gold": "42"})
    flood = threading.Thread(target=grade, args=(luffy_server, {"responses": TOWERS * 20, "gold": "5",
                                                                "mode": "math_verify"}))
    flood.start()
    try:
        time.sleep(0.5)
        during = scrape(luffy_server)
        assert grade(luffy_server, {"answers": ["1"] * 10, "gold": "1"}).status_code == 429
    finally:
        flood.join()
    after = scrape(luffy_server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(during, "luffy_grade_requests_in_flight") >= 1 and value(during, "luffy_grade_items_in_flight") >= 60
    assert value(after, "luffy_grade_requests_in_flight") == 0 and value(after, "luffy_grade_items_in_flight") == 0
    assert moved("luffy_grade_requests_refused_total") == 1
    assert moved("luffy_votes_total", route="/v1/grade", outcome="tie") == 1
    assert moved("luffy_grading_seconds_count", mode="luffy", route="/v1/grade") == 1
    assert moved("luffy_grading_seconds_count", mode="luffy", route="/v1/chat/completions") == 1
    assert moved("luffy_graded_items_total", mode="math_verify", route="/v1/grade") == 60
    assert moved("luffy_grading_timed_out_items_total", mode="math_verify", route="/v1/grade") >= 50
    restarts = sum(moved("luffy_grading_worker_restarts_total", pool="grade", reason=r) for r in RESTART_REASONS)
    assert restarts >= 1  # the towers still running at the deadline were killed with their workers
