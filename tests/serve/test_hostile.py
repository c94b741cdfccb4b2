"""luffy-serve under a hostile client: the key on every route, OpenAI error JSON for every error, bounded
/v1/grade, and math fields that never wait behind it. Runs against the session server (tests/conftest.py:
``luffy_server``, started with small limits: a 4 s grading deadline, capacity 64 items, 2 MB bodies)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

# Answers that really take long to grade: Math-Verify spends its whole 10 s bound on each tower (its parser
# and sympy evaluate the powers), the luffy mode 2.5-6 s.
TOWERS = [r"\boxed{2^{2^{2^{2^{2^{100}}}}}}", r"\boxed{10^{10^{10^{10}}}}", r"\boxed{9^{9^{9^{9}}}}"]
DEADLINE = 4.0  # the session server's --grade-deadline
SLACK = 1.5
OPEN = {"/health", "/ping"}


def auth(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["message"] and error["type"] and error["code"] == status
    return error


@pytest.fixture(scope="module")
def vllm_routes(luffy_server, qwen_model_dir) -> set[tuple[str, str]]:
    """(method, path) of every route vLLM's app registers for the session's command line, built here as the
    server builds it, plus whatever the live server's OpenAPI schema lists."""
    from starlette.routing import Mount

    from luffy_serve.cli import parse_args
    from luffy_serve.vllm_compat import AsyncEngineArgs, build_app

    args = parse_args(["--model", str(qwen_model_dir), "--served-model-name", "tiny", "--max-model-len", "1024"])
    model_config = AsyncEngineArgs.from_cli_args(args).create_model_config()
    routes: set[tuple[str, str]] = {("POST", "/v1/grade")}
    for route in build_app(args, ("generate",), model_config).routes:
        if isinstance(route, Mount):
            routes.add(("GET", route.path))
        for method in getattr(route, "methods", None) or ():
            routes.add((method, route.path))
    schema = httpx.get(f"{luffy_server.base_url}/openapi.json", headers=auth(luffy_server)).json()
    routes |= {(method.upper(), path) for path, methods in schema["paths"].items() for method in methods}
    assert ("POST", "/invocations") in routes and ("GET", "/docs") in routes and len(routes) > 20
    return routes


def test_every_route_but_health_needs_the_key(luffy_server, vllm_routes) -> None:
    open_without_key = []
    for method, path in sorted(vllm_routes):
        url = luffy_server.base_url + re.sub(r"\{[^}]+\}", "x", path)
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": luffy_server.api_key}):
            response = httpx.request(method, url, headers=headers, json={} if method == "POST" else None)
            if path in OPEN:
                assert response.status_code == 200, (method, path)
            elif response.status_code != 401:
                open_without_key.append((method, path, headers, response.status_code))
            elif method != "HEAD":
                assert response.json()["error"]["type"] == "AuthenticationError"
    assert open_without_key == []
    # An allow-list: a path nobody registered is refused without the key too, and is a 404 with it.
    assert httpx.get(f"{luffy_server.base_url}/some/future/route").status_code == 401
    assert_openai_error(httpx.get(f"{luffy_server.base_url}/some/future/route", headers=auth(luffy_server)), 404)


def test_metrics_need_the_key(luffy_server) -> None:
    assert_openai_error(httpx.get(f"{luffy_server.base_url}/metrics"), 401)
    with_key = httpx.get(f"{luffy_server.base_url}/metrics", headers=auth(luffy_server))
    assert with_key.status_code == 200 and "vllm:num_requests_running" in with_key.text


def test_demo_and_its_api_refuse_without_login(luffy_server) -> None:
    base = f"{luffy_server.base_url}/demo"
    page = httpx.get(f"{base}/", follow_redirects=True)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    join = {"data": ["hi", [], 0, 16, 1, ""], "fn_index": 0, "session_hash": "abc", "event_data": None}
    for method, path, body in [("GET", "/config", None), ("GET", "/gradio_api/info", None),
                               ("POST", "/gradio_api/queue/join", join), ("GET", "/gradio_api/queue/data", None),
                               ("POST", "/gradio_api/call/respond", {"data": []}),
                               ("POST", "/gradio_api/run/predict", {"data": []})]:
        response = httpx.request(method, base + path, json=body, params={"session_hash": "abc"})
        assert response.status_code == 401, (path, response.status_code)
        assert response.json()["error"]["code"] == 401
    wrong = httpx.post(f"{base}/login", data={"username": "me", "password": "wrong-key"})
    assert wrong.status_code == 400 and wrong.json()["detail"]  # Gradio's page still reads its own detail
    # Two routes Gradio serves without its login: the server asks for it there too.
    for path in ("/gradio_api/heartbeat/abc", "/gradio_api/startup-events"):
        assert httpx.get(base + path).json()["error"]["code"] == 401, path
        assert httpx.get(base + path, cookies={"access-token-x": "forged"}).status_code == 401, path
    with httpx.Client() as browser:
        assert browser.post(f"{base}/login", data={"username": "me", "password": luffy_server.api_key}).is_success
        assert browser.get(f"{base}/gradio_api/info").status_code == 200
        assert browser.get(f"{base}/gradio_api/startup-events").status_code == 200
        with browser.stream("GET", f"{base}/gradio_api/heartbeat/abc") as heartbeat:
            assert heartbeat.status_code == 200  # an event stream: its start is enough
        # Logged in, the page's functions still run only through the queue: direct calls are refused (4xx).
        direct = browser.post(f"{base}/gradio_api/api/respond", json={"data": ["hi", [], 0, 16, 1, ""]})
        assert direct.status_code == 404 and direct.json()["error"]["code"] == 404


def test_the_server_leaves_gradio_to_the_demo() -> None:
    """``--demo`` calls app.demo.mount, which builds and mounts the page, and only then: importing the server
    loads no gradio. (That luffy_serve never imports gradio itself is an import-linter contract.)"""
    code = ("import sys, luffy_serve.app, luffy_serve.cli, luffy_serve.vllm_compat; "
            "assert 'gradio' not in sys.modules, 'luffy_serve imported gradio'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


BAD_BODIES = [
    ("POST", "/v1/chat/completions", b"{not json", 400),
    ("POST", "/v1/chat/completions", b"\xff\xfe\x00", 400),
    ("POST", "/v1/completions", b"[1, 2", 400),
    ("POST", "/v1/grade", b"{not json", 400),
    ("POST", "/v1/grade", b"[]", 400),
    ("POST", "/tokenize", b"nope", 400),
    ("POST", "/v1/chat/completions", b'{"model": "tiny", "messages": "not a list"}', 400),
    ("POST", "/v1/grade", b'{"answers": "1", "gold": "1"}', 400),
    # Nested deeper than any JSON parser recurses (it raised RecursionError: a 500 before).
    ("POST", "/v1/chat/completions", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
    ("POST", "/tokenize", b"[" * 100_000 + b"]" * 100_000, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_bodies_are_openai_errors(luffy_server, method, path, body, status) -> None:
    headers = {**auth(luffy_server), "Content-Type": "application/json"}
    assert_openai_error(httpx.request(method, luffy_server.base_url + path, content=body, headers=headers), status)


def test_unknown_routes_and_methods_are_openai_errors(luffy_server) -> None:
    base = luffy_server.base_url
    assert_openai_error(httpx.get(f"{base}/v2/nothing", headers=auth(luffy_server)), 404)
    assert_openai_error(httpx.get(f"{base}/v1/chat/completions", headers=auth(luffy_server)), 405)
    assert_openai_error(httpx.get(f"{base}/v1/grade", headers=auth(luffy_server)), 405)
    assert_openai_error(httpx.put(f"{base}/health"), 405)


def test_oversized_bodies_are_413(luffy_server) -> None:
    url = f"{luffy_server.base_url}/v1/chat/completions"
    big = b'{"model": "tiny", "messages": [], "x": "' + b"a" * 2_100_000 + b'"}'
    assert_openai_error(httpx.post(url, content=big, headers=auth(luffy_server)), 413)

    def chunked():  # no content-length: the limit is enforced while reading
        for _ in range(40):
            yield b"a" * 64_000

    assert_openai_error(httpx.post(url, content=chunked(), headers=auth(luffy_server)), 413)
    # A chunked body within the limit still reaches vLLM intact.
    small = iter([b'{"model": "tiny", "max_tokens": 3, ', b'"messages": [{"role": "user", "content": "hi"}]}'])
    reply = httpx.post(url, content=small, headers={**auth(luffy_server), "Content-Type": "application/json"})
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3


def grade(server, body: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/grade", json=body, headers=auth(server), timeout=timeout)


def test_grade_deadline_is_honoured_and_the_work_dropped(luffy_server) -> None:
    responses = ["\\boxed{42}", *(f"Try {i}: {t}" for i, t in enumerate(TOWERS * 3))]  # 90 s without a deadline
    start = time.monotonic()
    reply = grade(luffy_server, {"responses": responses, "gold": "42", "mode": "math_verify"})
    took = time.monotonic() - start
    assert reply.status_code == 200 and took < DEADLINE + SLACK, took
    # The server's own time, from the request's arrival to its answer: within the deadline, and close to it
    # (the grading stops a reserve short of it, 5 % here, so that the answer is out in time).
    name, duration = reply.headers["server-timing"].split(";")
    assert name == "total" and 0.9 * DEADLINE <= float(duration.removeprefix("dur=")) / 1000 <= DEADLINE
    grades = reply.json()["grades"]
    assert grades[0]["correct"] and not grades[0]["timed_out"]
    assert all(g["timed_out"] and g["decided_by"] == "timeout" and not g["correct"] for g in grades[1:])
    # The towers' worker time was not spent: the pool answers at once.
    start = time.monotonic()
    assert grade(luffy_server, {"answers": ["1/2"], "gold": "0.5"}).json()["grades"][0]["correct"]
    assert time.monotonic() - start < 1.5


def test_grade_caps_and_capacity(luffy_server) -> None:
    too_many = grade(luffy_server, {"answers": ["1"] * 1025, "gold": "1"})
    assert assert_openai_error(too_many, 400)["param"] == "answers"
    too_long = grade(luffy_server, {"responses": ["x" * 190_000] * 6, "gold": "1"})  # 1.14 M characters
    assert_openai_error(too_long, 413)
    # 60 towers fill the capacity (64 items) until the deadline; a request beyond it is refused at once.
    flood = threading.Thread(target=grade, args=(luffy_server, {"responses": TOWERS * 20, "gold": "5",
                                                                 "mode": "math_verify"}))
    flood.start()
    try:
        time.sleep(0.5)
        start = time.monotonic()
        refused = grade(luffy_server, {"answers": ["1"] * 10, "gold": "1"})
        assert time.monotonic() - start < 1.0
        assert_openai_error(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= DEADLINE
    finally:
        flood.join()
    assert grade(luffy_server, {"answers": ["1"] * 10, "gold": "1"}).status_code == 200


def test_math_fields_do_not_wait_behind_a_grade_flood(luffy_server, openai_client) -> None:
    """Streamed chat requests with a gold and n=2 during a flood of tower answers on /v1/grade: their grades
    and majority come promptly. The math layer's delay: from the last token's chunk to the end of the stream
    (the grades ride on the finishing chunks, the majority on the chunk before [DONE])."""
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            grade(luffy_server, {"responses": TOWERS * 4, "gold": "5", "mode": "math_verify"})

    kwargs = dict(model="tiny", messages=[{"role": "user", "content": "What is 20 + 22?"}], temperature=1.0,
                  max_tokens=40, n=2, seed=3)
    delays = []
    with ThreadPoolExecutor(4) as flooders:
        for _ in range(4):
            flooders.submit(flood)
        try:
            time.sleep(1.0)
            for _ in range(12):
                last_token, grades, chunk = 0.0, [], None
                for chunk in openai_client.chat.completions.create(**kwargs, stream=True,
                                                                   extra_body={"gold": "42"}):
                    for choice in chunk.choices:
                        if choice.finish_reason is None and choice.delta.content:
                            last_token = time.monotonic()
                        if choice.finish_reason is not None:
                            grades.append(choice.model_extra["grade"])
                delays.append(time.monotonic() - last_token)
                assert len(grades) == 2 and all(g and not g["timed_out"] for g in grades), grades
                assert (chunk.model_extra["majority_answer"] or "").isdigit(), chunk.model_extra
        finally:
            stop.set()
    delays.sort()
    print(f"math-layer delay under a /v1/grade flood: p50 {statistics.median(delays):.3f} s, "
          f"max {delays[-1]:.3f} s")
    assert delays[-1] < 1.0, delays


def test_wrong_key_through_the_openai_client(luffy_server) -> None:
    client = openai.OpenAI(base_url=f"{luffy_server.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.completions.create(model="tiny", prompt="hi", max_tokens=1)
