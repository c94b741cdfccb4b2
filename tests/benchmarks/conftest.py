"""One in-process vLLM engine for every harness test of the session, on the tiny checkpoint of LUFFY's shape
(the Qwen2.5 vocabulary and a template that opens <think>)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_sampler(qwen_model_dir):
    """The harness's vLLM sampler around one real engine; small context so the CPU KV cache fits."""
    from vllm import LLM

    from benchmarks.samplers.vllm_sampler import VLLMSampler

    llm = LLM(model=str(qwen_model_dir), seed=0, max_model_len=1024)
    yield VLLMSampler(llm, str(qwen_model_dir))
    llm.llm_engine.engine_core.shutdown()
