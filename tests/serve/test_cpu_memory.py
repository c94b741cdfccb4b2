"""The engine's memory share on CPU: vLLM's default would take 92 % of the machine for the KV cache, and the
math layer's workers beside it then meet the OOM killer (cpu_memory.py)."""

from __future__ import annotations

import pytest

from luffy_math.workers.pool import WORKER_MEMORY_BYTES
from luffy_serve.cli import parse_args
from luffy_serve.cpu_memory import (
    API_PROCESS_BYTES,
    SMALLEST_SHARE,
    VLLM_DEFAULT_SHARE,
    engine_share,
    physical_bytes,
    usable_bytes,
)

GiB = 1 << 30


def test_the_engine_the_workers_and_the_api_fit_in_what_vllm_would_take():
    share = engine_share(24 * GiB, 24 * GiB, math_workers=2)
    beside = 2 * WORKER_MEMORY_BYTES + API_PROCESS_BYTES
    assert share * 24 * GiB + beside <= VLLM_DEFAULT_SHARE * 24 * GiB + GiB // 100  # rounding to 3 places
    assert share < engine_share(24 * GiB, 24 * GiB, math_workers=1) < VLLM_DEFAULT_SHARE


def test_a_container_limit_below_the_machine_lowers_the_share():
    """vLLM reads the host's /proc/meminfo; the share is of that, sized to the cgroup's limit."""
    on_host = engine_share(64 * GiB, 64 * GiB, math_workers=2)
    in_container = engine_share(16 * GiB, 64 * GiB, math_workers=2)
    assert in_container * 64 * GiB <= 16 * GiB * VLLM_DEFAULT_SHARE
    assert in_container < on_host


def test_a_machine_too_small_for_the_workers_keeps_the_smallest_share():
    assert engine_share(4 * GiB, 4 * GiB, math_workers=4) == SMALLEST_SHARE


def test_a_big_machine_gets_nearly_vllms_default():
    assert VLLM_DEFAULT_SHARE - 0.02 < engine_share(1024 * GiB, 1024 * GiB, math_workers=2) < VLLM_DEFAULT_SHARE


@pytest.fixture
def kv_unset(monkeypatch):
    """conftest.py sizes the test engines' KV cache with VLLM_CPU_KVCACHE_SPACE; a user's machine has none."""
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)


def test_left_unsized_on_cpu_the_engine_leaves_the_math_layer_room(kv_unset, tiny_model_dir):
    args = parse_args(["--model", str(tiny_model_dir), "--grading-workers", "2", "--grade-workers", "1"])
    assert args.gpu_memory_utilization == engine_share(usable_bytes(), physical_bytes(), math_workers=3)
    assert args.gpu_memory_utilization < VLLM_DEFAULT_SHARE


def test_vllm_builds_its_cache_config_from_that_share(kv_unset, tiny_model_dir):
    """The share reaches vLLM's own engine config (nothing downstream puts the default back)."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    args = parse_args(["--model", str(tiny_model_dir)])
    args.reasoning_parser = None  # "auto" is luffy-serve's, resolved from the tokenizer in main()
    config = AsyncEngineArgs.from_cli_args(args).create_engine_config()
    assert config.cache_config.gpu_memory_utilization == args.gpu_memory_utilization < VLLM_DEFAULT_SHARE
    assert config.cache_config.kv_cache_memory_bytes is None


@pytest.mark.parametrize("flags, env, expected", [
    (["--gpu-memory-utilization", "0.8"], {}, 0.8),
    (["--kv-cache-memory-bytes", str(2 * GiB)], {}, VLLM_DEFAULT_SHARE),
    ([], {"VLLM_CPU_KVCACHE_SPACE": "4"}, VLLM_DEFAULT_SHARE),
])
def test_a_size_the_user_chose_is_kept(kv_unset, monkeypatch, tiny_model_dir, flags, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = parse_args(["--model", str(tiny_model_dir), *flags])
    assert args.gpu_memory_utilization == expected


def test_an_engine_started_in_code_gets_the_same_share_unless_sized(kv_unset, monkeypatch):
    """The harness's offline engine grades beside its generation too (benchmarks/samplers/vllm_sampler.py)."""
    from luffy_serve.cpu_memory import share_beside

    assert share_beside(2) == engine_share(usable_bytes(), physical_bytes(), math_workers=2) < VLLM_DEFAULT_SHARE
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    assert share_beside(2) is None
