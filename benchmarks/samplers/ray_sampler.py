"""The cluster backend: vLLM engine replicas as Ray actors, fed from the driver like several endpoints.

Each replica is a Ray actor owning one vLLM ``AsyncLLM`` (continuous batching inside it); Ray places it (one GPU,
or a placement group of ``tensor_parallel_size`` GPUs whose workers vLLM starts through Ray) and restarts it
when its worker or node dies. The driver sends every request to the live replica with the fewest in flight
(``dispatch.py``); a replica's in-flight requests fail with it and go to the others, and the replica is used
again once Ray has restarted it. Finished samples come back to the driver one by one, where the runner grades
and stores them as with the in-process backend, so a killed run resumes from its store.

``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` (or ``--ray-address``), else starts a local one.
Every node needs this package installed; the replicas read the checkpoint by path or hub id on their node.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.problems import HarnessError
from benchmarks.samplers.base import Completion, SampleRequest, Sampling
from benchmarks.samplers.dispatch import Dispatcher, NoTargetLeft, Target, target_of
from luffy_util.errors import first_line

# Ray restarts a replica whose worker or node died this many times; each restart reloads the checkpoint.
REPLICA_RESTARTS = 4
# Environment the replicas take from the driver (Ray workers otherwise get the raylet's, not ours).
FORWARDED_ENV_PREFIXES = ("VLLM_", "HF_", "HUGGING_FACE_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_")


class EngineReplica:
    """One vLLM engine on the cluster; Ray runs it as an async actor, so its requests batch inside vLLM."""

    def __init__(self, model: str, engine_kwargs: dict[str, Any]):
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        # Ray starts its workers at niceness 15 (its worker_niceness); an engine is the run's main work, not a
        # background job, and the driver's grading workers (niceness 10) would otherwise come first on a
        # shared node. Lowering it takes privilege; without, RAY_worker_niceness=0 on `ray start` does it.
        # (Linux keeps a niceness per thread: every thread of this worker, so the engine's processes inherit 0.)
        tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
        for thread in tasks:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(thread), 0)

        self.engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(model=model, **engine_kwargs))
        self.rendered: dict[tuple[str, str], tuple[str, list[int]]] = {}

    async def ready(self) -> dict[str, Any]:
        """Where this replica runs (answered once the engine has loaded)."""
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    async def generate(self, request_id: str, question: str, seed: int, sampling: Sampling) -> dict[str, Any]:
        """One sample; cancelled (``ray.cancel``), vLLM aborts the request."""
        from vllm.inputs import TokensPrompt

        from benchmarks.samplers.vllm_sampler import sampling_params
        from benchmarks.templates import render_prompt

        key = (question, sampling.template)
        if key not in self.rendered:
            self.rendered[key] = render_prompt(self.engine.get_tokenizer(), question, sampling.template)
        text, token_ids = self.rendered[key]
        final = None
        async for output in self.engine.generate(TokensPrompt(prompt_token_ids=token_ids),
                                                 sampling_params(seed, sampling), request_id):
            final = output
        assert final is not None and final.finished
        sample = final.outputs[0]
        return {"text": sample.text, "finish_reason": sample.finish_reason, "rendered": text,
                "prompt_tokens": len(final.prompt_token_ids or token_ids), "completion_tokens": len(sample.token_ids)}


class RaySampler:
    """``replicas`` engines of ``tensor_parallel_size`` GPUs each (on CPU nodes: ``cpus_per_replica`` CPUs);
    ``concurrency``: requests in flight per replica (vLLM batches them)."""

    def __init__(self, model: str, replicas: int, seed: int, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, max_num_seqs: int | None = None, concurrency: int = 256,
                 cpus_per_replica: int = 1, math_workers: int = 1, address: str | None = None):
        self.model = model
        self.replicas = replicas
        self.seed = seed
        self.max_model_len = max_model_len
        self.tensor_parallel_size = tensor_parallel_size
        self.max_num_seqs = max_num_seqs
        self.concurrency = concurrency
        self.cpus_per_replica = cpus_per_replica
        self.math_workers = math_workers
        self.address = address
        self.targets: list[Target] = []
        self._started_ray = False
        self._placement_groups: list[Any] = []

    def describe(self) -> dict[str, str]:
        return {"backend": "ray", "model": self.model, "replicas": str(self.replicas)}

    def served(self) -> dict[str, int]:
        """Samples each replica answered in the last generate()."""
        return {t.name: t.served for t in self.targets}

    # -- the cluster ------------------------------------------------------------------------------------------

    def start(self) -> RaySampler:
        """Join or start the cluster and load every replica; a replica that cannot load is one clear error."""
        import ray

        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or None
            local = {} if address else {"include_dashboard": False, "object_store_memory": 256 * 2**20,
                                        "_system_config": {"worker_niceness": 0}}
            ray.init(address=address, log_to_driver=False, **local)
            self._started_ray = True
        on_gpu = ray.cluster_resources().get("GPU", 0) > 0
        self.targets = [Target(f"replica-{i}", self._replica(i, on_gpu)) for i in range(self.replicas)]
        try:
            ray.get([t.handle.ready.remote() for t in self.targets])
        except Exception as e:
            self.close()
            raise HarnessError(f"cannot start the vLLM replicas on {self.model}: {_reason(e)}") from e
        print(f"{self.replicas} vLLM replica(s) ready on the Ray cluster ({'GPU' if on_gpu else 'CPU'}); their logs "
              "are in the Ray session's logs/ on each node (/tmp/ray/session_latest/logs by default)", file=sys.stderr)
        return self

    def _replica(self, index: int, on_gpu: bool) -> Any:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        engine_kwargs: dict[str, Any] = {"seed": self.seed + index, "max_model_len": self.max_model_len,
                                         "tensor_parallel_size": self.tensor_parallel_size}
        if self.max_num_seqs:
            engine_kwargs["max_num_seqs"] = self.max_num_seqs
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
        options: dict[str, Any] = {"max_restarts": REPLICA_RESTARTS, "max_task_retries": 0,
                                   "max_concurrency": self.concurrency + 16,
                                   "runtime_env": {"env_vars": env}}
        if not on_gpu:
            from luffy_serve.cpu_memory import share_beside

            # On CPU the KV cache shares the node's memory: each replica takes its part of what one engine would.
            if (share := share_beside(self.math_workers)) is not None:
                engine_kwargs["gpu_memory_utilization"] = share / self.replicas
            options["num_cpus"] = self.cpus_per_replica
            # vLLM's own binding would pin every replica of a node to the same first cores; unbound, each
            # replica's threads (as many as its Ray CPUs) go where the OS finds room. Set either to choose.
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            env.setdefault("OMP_NUM_THREADS", str(self.cpus_per_replica))
        elif self.tensor_parallel_size == 1:
            options["num_gpus"] = 1
        else:  # vLLM starts its tensor-parallel workers through Ray, in this replica's placement group
            group = ray.util.placement_group([{"GPU": 1, "CPU": 1}] * self.tensor_parallel_size, strategy="PACK")
            self._placement_groups.append(group)
            engine_kwargs["distributed_executor_backend"] = "ray"
            options["num_cpus"] = 0
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                group, placement_group_capture_child_tasks=True)
        actor = ray.remote(EngineReplica).options(**options)
        return actor.remote(self.model, engine_kwargs)

    def close(self) -> None:
        """Stop the replicas (and the local cluster this sampler started)."""
        import ray

        if not ray.is_initialized():
            return
        for target in self.targets:
            ray.kill(target.handle, no_restart=True)
        for target in self.targets:  # the kill is asynchronous: wait until each replica is gone (its engine too)
            with contextlib.suppress(Exception):
                ray.get(target.handle.ready.remote(), timeout=30)
        for group in self._placement_groups:
            ray.util.remove_placement_group(group)
        self._placement_groups.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- generation -------------------------------------------------------------------------------------------

    def generate(self, requests: list[SampleRequest], sampling: Sampling,
                 on_done: Callable[[Completion], None]) -> None:
        if not self.targets:
            self.start()
        try:
            asyncio.run(self._generate_all(requests, sampling, on_done))
        except NoTargetLeft:
            raise HarnessError(f"every replica died and Ray could not restart them ({REPLICA_RESTARTS} restarts "
                               "each); finished samples are stored, rerun to resume") from None
        except Exception as e:
            import ray

            if isinstance(e, ray.exceptions.RayTaskError):
                raise HarnessError(f"{target_of(e, 'a replica')} failed a request: {_reason(e)}") from e
            raise

    async def _generate_all(self, requests: list[SampleRequest], sampling: Sampling,
                            on_done: Callable[[Completion], None]) -> None:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        probes: set[asyncio.Task] = set()
        dispatcher: Dispatcher

        async def attempt(target: Target, request: SampleRequest) -> Completion:
            ref = target.handle.generate.remote("-".join(map(str, request.key)), request.question, request.seed,
                                                sampling)
            try:
                reply = await ref
            except asyncio.CancelledError:
                ray.cancel(ref)  # the replica's coroutine is cancelled and vLLM aborts the request
                raise
            return Completion(request.key, reply["text"], reply["finish_reason"], reply["prompt_tokens"],
                              reply["completion_tokens"], reply["rendered"])

        def replica_failed(error: BaseException) -> bool:
            return isinstance(error, (RayActorError, ActorUnavailableError))

        async def wait_for_restart(target: Target) -> None:
            """Back in the rotation once Ray has restarted it; out for good when its restarts are used up."""
            while True:
                try:
                    await target.handle.ready.remote()
                except ActorUnavailableError:  # restarting, or not reachable for a moment
                    await asyncio.sleep(1.0)
                    continue
                except ActorDiedError:
                    _note(f"{target.name} died for good; the others carry on")
                    await dispatcher.retire(target)
                    return
                _note(f"{target.name} is back")
                await dispatcher.restore(target)
                return

        def on_failure(target: Target) -> None:
            if target.resting_until == math.inf:  # already waiting for its restart
                return
            _note(f"{target.name} failed; its requests go to the other replicas while Ray restarts it")
            target.resting_until = math.inf
            task = asyncio.get_running_loop().create_task(wait_for_restart(target))
            probes.add(task)
            task.add_done_callback(probes.discard)

        dispatcher = Dispatcher(self.targets, self.concurrency, give_up_after=self.replicas * (REPLICA_RESTARTS + 1),
                                attempt=attempt, target_failed=replica_failed, on_failure=on_failure)
        try:
            await dispatcher.run(requests, on_done)
        finally:
            for task in list(probes):
                task.cancel()


def _note(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"[ray] {message}", file=sys.stderr)


def _reason(error: BaseException) -> str:
    """The first line of the error that started it all (Ray wraps the replica's own exception)."""
    return first_line(getattr(error, "cause", None) or error, last_of_traceback=True)
