"""luffy-serve versus the raw vLLM OpenAI server: same checkpoint, same load, vLLM's own load generator.

Both servers run side by side (only the one being measured gets traffic); rounds alternate A/B so drift
on a shared machine hits both, and the report gives each round's ratio and the median of ratios.

    python benchmarks/perf/serve_bench.py [--model DIR] [--rounds 5] [--num-prompts 200] [--endpoint completions|chat]

Without ``--model`` it builds the tiny test checkpoint. Targets (issue 2): request throughput >= 0.99x and
TTFT p50 <= 1.02x the raw server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
METRICS = [("request_throughput", "req/s", "higher"), ("output_throughput", "out tok/s", "higher"),
           ("median_ttft_ms", "TTFT p50 ms", "lower"), ("p99_ttft_ms", "TTFT p99 ms", "lower")]


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO)  # noqa: SIM115
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early, see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    sys.exit(f"server did not start, see {log}")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint directory (default: build the tiny one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--endpoint", choices=["completions", "chat"], default="completions")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "serve_bench.json")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    model = args.model
    if model is None:
        from luffy_serve.tiny_model import build

        model = str(build(work / "tiny"))
    common = ["--model", model, "--max-model-len", "1024", "--served-model-name", "bench",
              "--disable-uvicorn-access-log", "--reasoning-parser", "deepseek_r1"]
    from luffy_serve.cli import _on_cpu

    if _on_cpu():  # luffy-serve turns chunked prefill off on the CPU; give the raw server the same engine
        common.append("--no-enable-chunked-prefill")
    servers = {
        "vllm": (8101, [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--port", "8101", *common]),
        "luffy": (8102, [sys.executable, "-m", "luffy_serve", "--port", "8102", *common]),
    }
    procs = {name: start(cmd, port, work / f"{name}.log") for name, (port, cmd) in servers.items()}
    rounds: list[dict] = []
    try:
        load(servers["vllm"][0], model, args)  # warm-up, not counted
        load(servers["luffy"][0], model, args)
        for r in range(args.rounds):
            order = ["vllm", "luffy"] if r % 2 == 0 else ["luffy", "vllm"]
            result = {name: load(servers[name][0], model, args) for name in order}
            rounds.append({name: {k: result[name][k] for k, _, _ in METRICS} for name in result})
            print(f"round {r + 1}: " + ", ".join(
                f"{label} {rounds[-1]['luffy'][k] / rounds[-1]['vllm'][k]:.3f}x" for k, label, _ in METRICS),
                flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=120)

    print(f"\nluffy-serve / raw vLLM server, {args.rounds} interleaved rounds of {args.num_prompts} requests "
          f"({args.endpoint}, {args.input_len} in / {args.output_len} out tokens, concurrency {args.concurrency}):")
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
