"""`--backend ray` against the in-process backend on the same requests: start-up, wall time, tokens/s.

Both samplers generate the very same SampleRequests (LUFFY's problems, the harness's per-sample seeds) with
the same sampling; each round runs every side once, in an order that alternates, and the figures are medians
over rounds of each round's ratio to the in-process side, since single timings swing by 15-30 % here. On
one CPU machine the ratio is the cost of Ray's path (an actor call per sample, the driver's dispatch, the
replica's async engine) and, with several replicas, how they share the cores; on a GPU cluster it is the
scaling.

    .venv/bin/python perf/ray_bench.py --model .cache/qwen-vocab-model-... \
        --data ../shared/benchmarks/luffy/valid.all.parquet --problems 32 --n 4 --max-tokens 256 \
        --template none --replicas 1,2 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from workload import add_workload_args, workload_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(parser, problems=32, template="none")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--replicas", default="1,2", help="comma list: one ray side per count")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

    from benchmarks.samplers.base import Sampling
    from benchmarks.samplers.ray_sampler import RaySampler
    from benchmarks.samplers.vllm_sampler import VLLMSampler

    requests = workload_requests(args)
    sampling = Sampling(temperature=0.6, top_p=1.0, max_tokens=args.max_tokens, template=args.template)

    sides: dict[str, object] = {}
    started: dict[str, float] = {}
    t = time.perf_counter()
    sides["in-process"] = VLLMSampler.load(args.model, seed=0, max_model_len=args.max_model_len,
                                           tensor_parallel_size=1, max_num_seqs=None)
    started["in-process"] = time.perf_counter() - t
    counts = [int(c) for c in args.replicas.split(",")]
    import ray

    # All sides stay loaded, so the local cluster gets a logical CPU per replica (each replica's engine runs
    # as many threads as its Ray CPUs: one).
    ray.init(num_cpus=sum(counts), include_dashboard=False, log_to_driver=False, object_store_memory=256 * 2**20)
    for count in counts:
        t = time.perf_counter()
        sides[f"ray x{count}"] = RaySampler(args.model, count, seed=0, max_model_len=args.max_model_len).start()
        started[f"ray x{count}"] = time.perf_counter() - t

    def one_pass(sampler) -> tuple[float, int]:
        tokens = [0]

        def done(completion) -> None:
            tokens[0] += completion.completion_tokens or 0

        t = time.perf_counter()
        sampler.generate(requests, sampling, done)
        return time.perf_counter() - t, tokens[0]

    for sampler in sides.values():  # warm-up: compiled shapes, the replicas' rendered prompts
        sampler.generate(requests[:8], sampling, lambda completion: None)
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for round_ in range(args.rounds):
            names = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in names:
                wall, tokens = one_pass(sides[name])
                seconds[name].append(wall)
                rates[name].append(tokens / wall)
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in sides), flush=True)
    finally:
        for sampler in sides.values():
            if hasattr(sampler, "close"):
                sampler.close()
        ray.shutdown()

    base = "in-process"
    print(f"\n{len(requests)} requests ({args.problems} {args.benchmark} problems x {args.n}), max_tokens "
          f"{args.max_tokens}, template {args.template}, {args.rounds} rounds\n")
    print("| side | start-up | wall (median) | tokens/s (median) | wall / in-process (median of rounds, range) |")
    print("|---|---|---|---|---|")
    for name in sides:
        ratios = [a / b for a, b in zip(seconds[name], seconds[base], strict=True)]
        print(f"| {name} | {started[name]:.1f} s | {statistics.median(seconds[name]):.2f} s | "
              f"{statistics.median(rates[name]):.0f} | {statistics.median(ratios):.3f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
