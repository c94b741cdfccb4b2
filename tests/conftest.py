"""Session-wide fixtures: the tiny checkpoint, one luffy-serve process, the shared LUFFY data.

Nothing here imports vLLM, so the trainer environment (.venv-train) can load this file too.
One engine per session: every test that needs the HTTP server shares ``luffy_server``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from luffy_testing.servers import Server, start_server, stop_server

REPO = Path(__file__).resolve().parents[1]
SHARED_LUFFY = REPO.parent / "shared" / "benchmarks" / "luffy"

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The project's tiny checkpoint: single <think>/</think> tokens, as DeepSeek-R1-distilled tokenizers."""
    from luffy_testing import tiny_model  # built once, cached by the builder's source hash

    return tiny_model.cached(REPO / ".cache", "tiny")


@pytest.fixture(scope="session")
def qwen_model_dir() -> Path:
    """The tiny checkpoint on the real Qwen2.5 vocabulary (<think> is three tokens), as LUFFY-Qwen-Math-*."""
    from luffy_testing import tiny_model

    return tiny_model.cached(REPO / ".cache", "qwen")


@pytest.fixture(scope="session")
def luffy_data() -> Path:
    """LUFFY's own evaluation parquet files (read from ../shared, never copied into the repo)."""
    if not (SHARED_LUFFY / "valid.all.parquet").exists():
        pytest.fail(f"missing {SHARED_LUFFY}/valid.all.parquet (the shared LUFFY data)")
    return SHARED_LUFFY


# Small limits, so that tests/serve/test_hostile.py can reach them quickly.
SESSION_FLAGS = ["--demo", "--grade-deadline", "4", "--grade-capacity", "64", "--max-request-bytes", "2000000"]


@pytest.fixture(scope="session")
def luffy_server(qwen_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One luffy-serve process (real vLLM CPU engine) for the whole session, on the checkpoint with LUFFY's
    shape (the Qwen2.5 vocabulary: no think tokens, so the math layer splits the text), with the web demo
    mounted at /demo."""
    server = start_server(qwen_model_dir, tmp_path_factory.mktemp("server") / "luffy-serve.log", SESSION_FLAGS)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def think_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A second luffy-serve, started only by the tests that need it, on the think-token checkpoint
    (DeepSeek-R1-distilled tokenizers' shape: vLLM's deepseek_r1 parser splits the reasoning). It is also
    the server without LUFFY's pinned grading environment (LUFFY_EXACT_PYTHON names a missing one)."""
    server = start_server(tiny_model_dir, tmp_path_factory.mktemp("think-server") / "luffy-serve.log",
                          env={"LUFFY_EXACT_PYTHON": str(tmp_path_factory.mktemp("no-exact") / "python")})
    yield server
    stop_server(server)


@pytest.fixture(scope="session", params=["qwen-vocab", "think-tokens"])
def any_server(request: pytest.FixtureRequest) -> Server:
    """Each server in turn: a test of the response's shape must pass on both tokenizer shapes."""
    return request.getfixturevalue("luffy_server" if request.param == "qwen-vocab" else "think_server")


@pytest.fixture(scope="session")
def openai_client(luffy_server: Server):
    """The official openai client pointed at the session's luffy-serve."""
    from openai import OpenAI

    return OpenAI(base_url=f"{luffy_server.base_url}/v1", api_key=luffy_server.api_key, max_retries=0)
