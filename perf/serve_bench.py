"""luffy-serve versus the raw vLLM OpenAI server: same checkpoint, same load, same prompts.

Both servers run side by side (only the one being measured gets traffic); rounds alternate A/B so drift
on a shared machine hits both, and the report gives each round's ratio and the median of ratios.

    python perf/serve_bench.py [--model DIR] [--rounds 5] [--num-prompts 200] [--endpoint completions|chat]
    python perf/serve_bench.py --endpoint chat --n 4 [--gold 42]    # votes: server-side vs client-side

``--n 1`` (the default) uses vLLM's own load generator (``vllm.benchmarks.serve``; backend ``vllm`` or
``openai-chat``). Its chat backend takes TTFT at the first SSE chunk with a non-empty ``choices``, whatever
the delta holds: vLLM's role chunk (``{"role": "assistant", "content": ""}``), sent when the engine's first
output arrives, so ``reasoning`` and ``content`` deltas time alike. Output tokens come from the final usage
chunk (``completion_tokens``, reasoning included); the text it keeps is ``content`` only, and is used only
when no usage comes.

``--n N`` (N > 1) is chat only and uses this script's own load generator (vLLM's does not do a client vote):
streaming requests with ``n=N``, ``ignore_eos`` and ``max_tokens`` fixed, at a fixed concurrency, the same
random prompts (vLLM's random dataset) for both servers. luffy-serve votes server-side (``majority_answer``,
and ``grade`` with ``--gold``); for the raw server the client does the same work itself after the stream
ends (``luffy_math.majority_vote`` over ``boxed_answer`` of each choice's text after ``</think>``, and
``luffy_math.grade`` with ``--gold``, in a luffy_math grading pool so it does not stall the other streams),
and its end-to-end latency includes that. TTFT there is the first chunk with token text in any field
(``content``, ``reasoning``, ``reasoning_content``).

``--reasoning-parser`` (default ``auto``) goes to both servers; ``auto`` gives the raw server
``deepseek_r1`` when the tokenizer has single ``<think>``/``</think>`` tokens and no parser otherwise, and
lets luffy-serve pick its own split. Without ``--model`` it uses the tiny test checkpoint (built once and
cached). Targets (issue 10): request throughput >= 0.99x, TTFT p50 <= 1.02x, TTFT p99 <= 1.10x the raw server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from luffy_testing.servers import launch
from luffy_util.processes import LaunchError, stop

REPO = Path(__file__).resolve().parents[1]
METRICS = [("request_throughput", "req/s", "higher"), ("output_throughput", "out tok/s", "higher"),
           ("median_ttft_ms", "TTFT p50 ms", "lower"), ("p99_ttft_ms", "TTFT p99 ms", "lower"),
           ("median_e2el_ms", "E2E p50 ms", "lower"), ("p99_e2el_ms", "E2E p99 ms", "lower")]


def tiny_checkpoint() -> str:
    """The tiny test checkpoint, in the cache the test suite uses (tests/conftest.py), so a benchmark after the
    tests (or a second benchmark) does not spend minutes teaching it again."""
    from luffy_testing import tiny_model

    return str(tiny_model.cached(REPO / ".cache", "tiny", log=lambda line: print(line, flush=True)))


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    """A server process, once its /health answers; the script ends, saying where its log is, if it does not."""
    try:
        return launch(cmd, f"http://127.0.0.1:{port}/health", log, timeout=900, poll_s=1)
    except LaunchError as exc:
        sys.exit(f"{exc.summary}; see {log}")


def load(port: int, model: str, args: argparse.Namespace) -> dict:
    """One run of vllm.benchmarks.serve (random dataset, fixed output length) against a server."""
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main

    from luffy_serve.vllm_compat import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    endpoint = ["--backend", "openai-chat", "--endpoint", "/v1/chat/completions"] if args.endpoint == "chat" else \
        ["--backend", "vllm", "--endpoint", "/v1/completions"]
    bench_args = parser.parse_args([
        *endpoint, "--base-url", f"http://127.0.0.1:{port}", "--model", model, "--served-model-name", "bench",
        "--dataset-name", "random", "--random-input-len", str(args.input_len),
        "--random-output-len", str(args.output_len), "--ignore-eos", "--num-prompts", str(args.num_prompts),
        "--request-rate", "inf", "--max-concurrency", str(args.concurrency), "--seed", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99", "--disable-tqdm",
    ])
    return bench_main(bench_args)


# ---- n > 1: this script's own load generator, with the vote server-side (luffy) or client-side (raw) ----


def random_prompts(model: str, args: argparse.Namespace) -> list[str]:
    """vLLM's random dataset (what ``--dataset-name random`` sends), seeded: the same prompts for both servers."""
    from vllm.benchmarks.datasets import RandomDataset
    from vllm.tokenizers import get_tokenizer

    samples = RandomDataset(random_seed=0).sample(get_tokenizer(model), args.num_prompts,
                                                  input_len=args.input_len, output_len=args.output_len)
    return [sample.prompt for sample in samples]


class VoteLoad:
    """Streaming chat with ``n`` choices at a fixed concurrency. ``client_vote``: the client extracts, votes
    (and grades) after the stream, as a raw vLLM user must; luffy-serve sends ``majority_answer`` itself."""

    def __init__(self, port: int, args: argparse.Namespace, client_vote: bool, pool):
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.args, self.client_vote, self.pool = args, client_vote, pool

    async def run(self, prompts: list[str]) -> dict:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for prompt in prompts:
            queue.put_nowait(prompt)
        results: list[dict] = []
        limits = httpx.Limits(max_connections=self.args.concurrency, max_keepalive_connections=self.args.concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as http:
            started = time.perf_counter()
            await asyncio.gather(*(self.worker(http, queue, results) for _ in range(self.args.concurrency)))
            duration = time.perf_counter() - started
        return self.metrics(results, duration)

    async def worker(self, http: httpx.AsyncClient, queue: asyncio.Queue, results: list[dict]) -> None:
        while not queue.empty():
            results.append(await self.one(http, queue.get_nowait()))

    async def one(self, http: httpx.AsyncClient, prompt: str) -> dict:
        body = {"model": "bench", "messages": [{"role": "user", "content": prompt}], "n": self.args.n,
                "max_tokens": self.args.output_len, "ignore_eos": True, "temperature": 0.6, "top_p": 1.0,
                "stream": True, "stream_options": {"include_usage": True}}
        if self.args.gold is not None and not self.client_vote:
            body["gold"] = self.args.gold
        texts: dict[int, list[str]] = {}
        split_by_server = False
        ttft, tokens, majority = None, 0, None
        started = time.perf_counter()
        try:
            async with http.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    return {"ok": False, "error": f"HTTP {response.status_code}"}
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        reasoning = delta.get("reasoning") or delta.get("reasoning_content")
                        split_by_server |= reasoning is not None
                        if ttft is None and (delta.get("content") or reasoning):
                            ttft = time.perf_counter() - started
                        texts.setdefault(choice.get("index", 0), []).append(delta.get("content") or "")
                    if chunk.get("usage"):
                        tokens = chunk["usage"].get("completion_tokens") or 0
                    majority = chunk.get("majority_answer", majority)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": type(exc).__name__}
        if self.client_vote:
            majority = await self.vote(["".join(parts) for _, parts in sorted(texts.items())], split_by_server)
        latency = time.perf_counter() - started
        return {"ok": ttft is not None, "ttft": ttft, "latency": latency, "tokens": tokens, "majority": majority}

    async def vote(self, texts: list[str], split_by_server: bool) -> str | None:
        """What luffy-serve adds, done by the client: answers after ``</think>``, their vote, the grades."""
        from luffy_math import answer_part, boxed_answer

        answers = [boxed_answer(t if split_by_server else answer_part(t)) for t in texts]
        work = [asyncio.wrap_future(self.pool.submit_vote(answers))]
        if self.args.gold is not None:
            work += [asyncio.wrap_future(self.pool.submit_grade(t, self.args.gold)) for t in texts]
        return (await asyncio.gather(*work))[0]

    def metrics(self, results: list[dict], duration: float) -> dict:
        done = [r for r in results if r["ok"]]
        if len(done) < len(results):
            errors = sorted({r.get("error", "no token") for r in results if not r["ok"]})
            print(f"  {len(results) - len(done)} of {len(results)} requests failed: {', '.join(errors)}", flush=True)
        ttfts = [r["ttft"] * 1000 for r in done] or [float("nan")]
        e2els = [r["latency"] * 1000 for r in done] or [float("nan")]
        return {"completed": len(done), "request_throughput": len(done) / duration,
                "output_throughput": sum(r["tokens"] for r in done) / duration,
                "median_ttft_ms": float(np.median(ttfts)), "p99_ttft_ms": float(np.percentile(ttfts, 99)),
                "median_e2el_ms": float(np.median(e2els)), "p99_e2el_ms": float(np.percentile(e2els, 99)),
                "majority_answers": sum(r["majority"] is not None for r in done)}


def has_think_tokens(model: str) -> bool:
    from vllm.tokenizers import get_tokenizer

    from luffy_serve.reasoning import has_think_tokens as tokenizer_has_them

    return tokenizer_has_them(get_tokenizer(model))


def parser_flags(choice: str, model: str) -> dict[str, list[str]]:
    """``--reasoning-parser`` for each server: ``auto`` fits the tokenizer (see the module docstring)."""
    if choice == "auto":
        raw = ["--reasoning-parser", "deepseek_r1"] if has_think_tokens(model) else []
        return {"vllm": raw, "luffy": []}
    if choice == "none":
        return {"vllm": [], "luffy": ["--reasoning-parser", ""]}
    return {"vllm": ["--reasoning-parser", choice], "luffy": ["--reasoning-parser", choice]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (default: the tiny one, built once and cached)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--endpoint", choices=["completions", "chat"], default="completions")
    parser.add_argument("--n", type=int, default=1, help="choices per request; > 1 compares the majority vote "
                        "server-side (luffy) with the same vote client-side (raw vLLM); chat only")
    parser.add_argument("--gold", help="with --n > 1: also grade every choice against this gold")
    parser.add_argument("--reasoning-parser", default="auto",
                        help="'auto' (fits the tokenizer), 'none', or a vLLM parser name for both servers")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "serve_bench.json")
    args = parser.parse_args()
    if args.n < 1 or args.rounds < 1 or args.num_prompts < 1 or args.concurrency < 1:
        parser.error("--n, --rounds, --num-prompts and --concurrency must be at least 1")
    if args.n > 1 and args.endpoint != "chat":
        parser.error("--n > 1 needs --endpoint chat")
    if args.gold is not None and args.n == 1:
        parser.error("--gold needs --n > 1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model = args.model or tiny_checkpoint()
    common = ["--model", model, "--max-model-len", "1024", "--served-model-name", "bench",
              "--disable-uvicorn-access-log"]
    from luffy_serve.vllm_compat import on_cpu

    if on_cpu():  # luffy-serve turns chunked prefill off on the CPU; give the raw server the same engine
        common.append("--no-enable-chunked-prefill")
    reasoning = parser_flags(args.reasoning_parser, model)
    servers = {
        "vllm": (8101, [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--port", "8101", *common,
                        *reasoning["vllm"]]),
        "luffy": (8102, [sys.executable, "-m", "luffy_serve", "--port", "8102", *common, *reasoning["luffy"]]),
    }
    print(f"reasoning parser: raw vLLM {reasoning['vllm'][1:] or ['none']}, "
          f"luffy-serve {reasoning['luffy'][1:] or ['its own choice']}", flush=True)
    procs = {name: start(cmd, port, work / f"{name}.log") for name, (port, cmd) in servers.items()}
    rounds: list[dict] = []
    pool = None
    try:
        if args.n > 1:
            from luffy_math.workers import GradingPool

            pool = GradingPool(workers=1)
            prompts = random_prompts(model, args)
            loads = {name: VoteLoad(servers[name][0], args, client_vote=name == "vllm", pool=pool) for name in servers}

            def measure(name: str) -> dict:
                return asyncio.run(loads[name].run(prompts))
        else:
            def measure(name: str) -> dict:
                return load(servers[name][0], model, args)
        measure("vllm")  # warm-up, not counted
        measure("luffy")
        for r in range(args.rounds):
            order = ["vllm", "luffy"] if r % 2 == 0 else ["luffy", "vllm"]
            result = {name: measure(name) for name in order}
            rounds.append({name: {k: result[name][k] for k, _, _ in METRICS} for name in result})
            print(f"round {r + 1}: " + ", ".join(
                f"{label} {rounds[-1]['luffy'][k] / rounds[-1]['vllm'][k]:.3f}x" for k, label, _ in METRICS),
                flush=True)
            if args.n > 1:
                print("  majority answers: " + ", ".join(f"{name} {result[name]['majority_answers']}"
                                                         f"/{result[name]['completed']}" for name in order))
    finally:
        if pool is not None:
            pool.close()
        for proc in procs.values():
            stop(proc, timeout=120)

    shape = f"n={args.n}" + (f", gold {args.gold}" if args.gold is not None else "")
    print(f"\nluffy-serve / raw vLLM server, {args.rounds} interleaved rounds of {args.num_prompts} requests "
          f"({args.endpoint}, {shape}, {args.input_len} in / {args.output_len} out tokens, "
          f"concurrency {args.concurrency}):")
    summary = {}
    for key, label, better in METRICS:
        ratios = [r["luffy"][key] / r["vllm"][key] for r in rounds]
        raw = statistics.median(r["vllm"][key] for r in rounds)
        ours = statistics.median(r["luffy"][key] for r in rounds)
        summary[key] = {"median_ratio": statistics.median(ratios), "ratios": ratios, "vllm": raw, "luffy": ours}
        print(f"  {label:>12}: vLLM {raw:9.2f}  luffy {ours:9.2f}  ratio median {statistics.median(ratios):.3f} "
              f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)}; {better} is better)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "rounds": rounds,
                                    "summary": summary}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
