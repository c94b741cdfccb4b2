"""Harness overhead: `python -m benchmarks run`'s code path versus a plain `LLM.generate` on the same prompts.

All sides use one engine (tiny checkpoint, CPU), the same token prompts and the same SamplingParams.
"plain" is `LLM.generate`; "loop" is the harness's engine loop alone (every request queued at once, each
output taken as it finishes); "harness" is `benchmarks.runner.run` end to end: data loading, the loop,
grading with both graders in luffy_math's pool (overlapping generation), the resumable JSONL and the report
(Markdown, JSON, PNG). Repeats are interleaved (the order of the sides alternates) and the figure is the
median over repeats of each repeat's harness / plain ratio, since single timings swing by 30 % or more here.
Target: harness / plain <= 1.05.

    .venv/bin/python perf/harness_bench.py --model .cache/tiny-model-... \
        --data ../shared/benchmarks/luffy/valid.all.parquet --problems 64 --n 4 --max-tokens 384 \
        --template none --repeats 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from workload import add_workload_args, workload_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(parser, problems=64, template="own")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grading-workers", type=int, default=None,
                        help="default: the harness's (a quarter of the cores, 1 to 4: workers_beside_engine)")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

    from vllm import LLM
    from vllm.inputs import TokensPrompt

    from benchmarks.runner import RunOptions, run
    from benchmarks.samplers.base import Sampling
    from benchmarks.samplers.vllm_sampler import VLLMSampler, sampling_params
    from benchmarks.templates import render_prompt

    llm = LLM(model=args.model, seed=0, max_model_len=1024)
    sampler = VLLMSampler(llm, args.model)
    sampling = Sampling(temperature=0.6, top_p=1.0, max_tokens=args.max_tokens, template=args.template)

    def options(out: Path) -> RunOptions:
        return RunOptions(model=args.model, backend="vllm", benchmarks=[args.benchmark], out=out, sampling=sampling,
                          n={args.benchmark: args.n}, data=[args.data], limit=args.problems, progress=False,
                          grading_workers=args.grading_workers)

    requests = workload_requests(args)  # the plain side gets exactly the requests the harness queues
    prompts = [TokensPrompt(prompt_token_ids=render_prompt(llm.get_tokenizer(), r.question, args.template)[1]) for r in requests]
    params = [sampling_params(r.seed, sampling) for r in requests]

    llm.generate(prompts[:8], params[:8], use_tqdm=False)  # warm-up
    times: dict[str, list[float]] = {"plain": [], "loop": [], "harness": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            sides = list(times) if i % 2 == 0 else list(reversed(times))
            for side in sides:
                start = time.perf_counter()
                if side == "plain":
                    outputs = llm.generate(prompts, params, use_tqdm=False)
                elif side == "loop":  # the harness's engine loop alone: queue all, take outputs as they finish
                    sampler.generate(requests, sampling, lambda completion: None)
                else:
                    run(options(Path(tmp) / f"run{i}"), lambda: sampler)
                times[side].append(time.perf_counter() - start)
            print(f"repeat {i}: " + ", ".join(f"{side} {t[-1]:.2f}s" for side, t in times.items()), flush=True)
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    medians = {side: statistics.median(t) for side, t in times.items()}
    ratios = {side: statistics.median(a / b for a, b in zip(times[side], times["plain"], strict=True))
              for side in ("loop", "harness")}
    print(f"{len(requests)} samples ({len(requests) // args.n} problems x {args.n}), template {args.template}, "
          f"{tokens} generated tokens per pass, max_tokens {args.max_tokens}")
    print(f"medians: plain LLM.generate {medians['plain']:.2f}s, harness engine loop {medians['loop']:.2f}s, "
          f"full harness run (grading, JSONL, report) {medians['harness']:.2f}s")
    print(f"median of per-repeat ratios to plain: engine loop {ratios['loop']:.3f}, full harness "
          f"{ratios['harness']:.3f}; target <= 1.05")


if __name__ == "__main__":
    main()
