"""Adaptive majority votes against the full vote: tokens, latency and agreement through luffy-serve.

Part 1, served: one luffy-serve on the tiny checkpoint, at a temperature where its answers vary (mostly 42,
sometimes 24, now and then none). Each round sends the same requests twice, once as a full ``n = 16`` vote
and once with ``"vote": {"mode": "adaptive"}``, in alternating order; every request is seeded, so both votes
see the same samples (an adaptive vote draws the full vote's first ones). Per round: mean generated tokens
per request (``usage.completion_tokens``, aborted samples included) and the engine's own count
(``vllm:generation_tokens_total``), latency p50 and mean, and the share of requests whose majority answers
agree. The report gives each round's ratio adaptive / full and the median of the ratios. Targets (issue 28):
tokens <= 0.5x at >= 99 % agreement, latency no worse than the full vote.

Part 2, replayed: a synthetic recorded run whose problems are hard to vote on (the leading answer holds
40-60 % of the samples, the runner-up most of the rest), beside an easy one (80-95 %), replayed by
``python -m benchmarks replay`` at several confidences: the honest trade-off curve, agreement against
samples used.

    python perf/vote_bench.py [--rounds 5] [--requests 32] [--concurrency 8] [--temperature 1.0]
    python perf/vote_bench.py --replay-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from luffy_testing.servers import launch
from luffy_util.processes import LaunchError, free_port, stop

REPO = Path(__file__).resolve().parents[1]
QUESTION = [{"role": "user", "content": "What is 20 + 22?"}]


def tiny_checkpoint() -> str:
    """The tiny test checkpoint, from the cache the test suite uses (built once)."""
    from luffy_testing import tiny_model

    return str(tiny_model.cached(REPO / ".cache", "tiny", log=lambda line: print(line, flush=True)))


def generated_tokens(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("vllm:generation_tokens_total{"))


async def one(http: httpx.AsyncClient, base: str, seed: int, args: argparse.Namespace, adaptive: bool) -> dict:
    body = {"model": "bench", "messages": QUESTION, "n": args.n, "temperature": args.temperature,
            "max_tokens": args.max_tokens, "seed": seed}
    if adaptive:
        body["vote"] = {"mode": "adaptive", "confidence": args.confidence,
                        **({"wave": args.wave} if args.wave else {})}
    started = time.perf_counter()
    response = await http.post(f"{base}/v1/chat/completions", json=body)
    latency = time.perf_counter() - started
    response.raise_for_status()
    out = response.json()
    return {"seed": seed, "latency": latency, "tokens": out["usage"]["completion_tokens"],
            "majority": out["majority_answer"], "samples": (out.get("vote") or {}).get("samples", args.n)}


async def phase(base: str, seeds: list[int], args: argparse.Namespace, adaptive: bool) -> dict:
    """All requests of one mode at a fixed concurrency; per-request results and the engine's token count."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for seed in seeds:
        queue.put_nowait(seed)
    results: list[dict] = []

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            results.append(await one(http, base, queue.get_nowait(), args, adaptive))

    before = generated_tokens(base)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
    wall = time.perf_counter() - started
    await asyncio.sleep(0.5)  # the last step's tokens land in the counter
    latencies = [r["latency"] for r in results]
    return {"by_seed": {r["seed"]: r for r in results}, "wall_s": wall,
            "tokens_per_request": statistics.fmean(r["tokens"] for r in results),
            "engine_tokens_per_request": (generated_tokens(base) - before) / len(results),
            "latency_p50_s": statistics.median(latencies), "latency_mean_s": statistics.fmean(latencies),
            "samples_mean": statistics.fmean(r["samples"] for r in results)}


def served(args: argparse.Namespace) -> dict:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    model = args.model or tiny_checkpoint()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="vote-bench-")) / "luffy-serve.log"
    cmd = [sys.executable, "-m", "luffy_serve", "--model", model, "--port", str(port), "--max-model-len", "1024",
           "--served-model-name", "bench", "--disable-uvicorn-access-log"]
    try:
        proc = launch(cmd, f"{base}/health", log, timeout=900, poll_s=1)
    except LaunchError as exc:
        sys.exit(f"{exc.summary}; see {log}")
    rounds = []
    try:
        asyncio.run(phase(base, list(range(4)), args, adaptive=False))  # warm-up, not counted
        asyncio.run(phase(base, list(range(4)), args, adaptive=True))
        for r in range(args.rounds):
            seeds = [1000 * (r + 1) + 17 * i for i in range(args.requests)]
            order = [False, True] if r % 2 == 0 else [True, False]
            result = {("adaptive" if a else "full"): asyncio.run(phase(base, seeds, args, a)) for a in order}
            full, adaptive = result["full"], result["adaptive"]
            agree = statistics.fmean(full["by_seed"][s]["majority"] == adaptive["by_seed"][s]["majority"]
                                     for s in seeds)
            row = {"agreement": agree, "samples_mean": adaptive["samples_mean"]}
            for key in ("tokens_per_request", "engine_tokens_per_request", "latency_p50_s", "latency_mean_s",
                        "wall_s"):
                row[key] = {"full": full[key], "adaptive": adaptive[key], "ratio": adaptive[key] / full[key]}
            rounds.append(row)
            print(f"round {r + 1}: tokens {row['tokens_per_request']['ratio']:.3f}x "
                  f"(engine {row['engine_tokens_per_request']['ratio']:.3f}x), latency p50 "
                  f"{row['latency_p50_s']['ratio']:.3f}x, mean {row['latency_mean_s']['ratio']:.3f}x, "
                  f"agreement {100 * agree:.1f} %, samples {adaptive['samples_mean']:.2f} of {args.n}", flush=True)
    finally:
        stop(proc, timeout=120)
    summary = {"rounds": rounds}
    print(f"\nadaptive / full n={args.n} vote (confidence {args.confidence}, wave {args.wave or 'default'}), "
          f"{args.rounds} interleaved rounds of {args.requests} requests, concurrency {args.concurrency}, "
          f"temperature {args.temperature}:")
    print("| metric | full | adaptive | ratio (median) | per-round ratios |\n|---|---|---|---|---|")
    for key in ("tokens_per_request", "engine_tokens_per_request", "latency_p50_s", "latency_mean_s", "wall_s"):
        ratios = [r[key]["ratio"] for r in rounds]
        full = statistics.median(r[key]["full"] for r in rounds)
        mine = statistics.median(r[key]["adaptive"] for r in rounds)
        summary[key] = {"median_ratio": statistics.median(ratios), "ratios": ratios, "full": full, "adaptive": mine}
        print(f"| {key} | {full:.3f} | {mine:.3f} | {statistics.median(ratios):.3f} | "
              + ", ".join(f"{x:.3f}" for x in ratios) + " |")
    agreements = [r["agreement"] for r in rounds]
    summary["agreement"] = {"median": statistics.median(agreements), "per_round": agreements,
                            "all": statistics.fmean(agreements)}
    summary["samples_mean"] = statistics.fmean(r["samples_mean"] for r in rounds)
    print(f"| agreement of majority answers | | | {100 * statistics.median(agreements):.1f} % | "
          + ", ".join(f"{100 * a:.1f} %" for a in agreements) + " |")
    print(f"mean samples used: {summary['samples_mean']:.2f} of {args.n}")
    return summary


def synthetic_run(path: Path, problems: int, n: int, seed: int) -> None:
    """A recorded run in the harness's format: "hard" problems whose leader holds 40-60 % of the samples (the
    runner-up 60-90 % of the rest, then a few stray answers and unboxed ones), and "easy" ones at 80-95 %."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    with (path / "generations.seed0.jsonl").open("w") as f:
        for benchmark, low, high in (("hard (leader 40-60 %)", 0.4, 0.6), ("easy (leader 80-95 %)", 0.8, 0.95)):
            for problem in range(problems):
                lead = rng.uniform(low, high)
                second = (1 - lead) * rng.uniform(0.6, 0.9)
                correct = "1" if rng.random() < 0.7 else "2"
                for sample in range(n):
                    x = rng.random()
                    if x < lead:
                        answer = "1"
                    elif x < lead + second:
                        answer = "2"
                    elif x < lead + second + (1 - lead - second) / 2:
                        answer = str(rng.randint(3, 9))
                    else:
                        answer = None
                    grade = {"extracted": answer, "correct": answer == correct}
                    f.write(json.dumps({"benchmark": benchmark, "problem": str(problem), "sample": sample,
                                        "gold": correct, "extracted": answer, "grades": {"luffy": grade}}) + "\n")


def replayed(args: argparse.Namespace) -> dict:
    from benchmarks.replay import run_replay

    run_dir = Path(tempfile.mkdtemp(prefix="vote-bench-synthetic-"))
    synthetic_run(run_dir, args.synthetic_problems, 32, seed=0)
    markdown, out = run_replay(run_dir, args.replay_out, (0.8, 0.9, 0.95, 0.99, 0.999), orders=args.orders,
                               progress=False)
    print(markdown)
    print(f"wrote {out / 'replay.md'}, replay.json, replay.png")
    return json.loads((out / "replay.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (default: the tiny one, built once and cached)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=32, help="requests per mode per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--wave", type=int, help="samples at once (default: the server's)")
    parser.add_argument("--synthetic-problems", type=int, default=200)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--replay-only", action="store_true")
    parser.add_argument("--replay-out", type=Path, default=REPO / "artifacts" / "vote_bench_replay")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "vote_bench.json")
    args = parser.parse_args()
    report = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not args.replay_only:
        report["served"] = served(args)
    report["replay"] = replayed(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
