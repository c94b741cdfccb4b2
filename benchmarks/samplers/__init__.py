"""Samplers: one interface, two backends (an in-process vLLM engine, any OpenAI-compatible endpoint)."""

from benchmarks.samplers.base import Completion, Sampler, SampleRequest, Sampling

__all__ = ["Completion", "SampleRequest", "Sampler", "Sampling"]
