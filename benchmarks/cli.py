"""python -m benchmarks run | score | report | compare | replay (argparse). Errors end as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from benchmarks.problems import HarnessError
from benchmarks.samplers.base import Sampling
from benchmarks.sources import data_file
from benchmarks.tasks import BENCHMARKS, MATH_BENCHMARKS
from benchmarks.templates import TEMPLATES
from luffy_math.grader import MODES as GRADERS
from luffy_util import arg_types
from luffy_util.errors import first_line


def parse_n(text: str) -> dict[str, int]:
    """"32" (every benchmark) or "aime24=32,amc=16"; every count at least 1."""
    pairs = [("*", text)] if "=" not in text else [item.split("=", 1) for item in text.split(",") if item.strip()]
    if not pairs or any(not name.strip() for name, _ in pairs):
        raise argparse.ArgumentTypeError(f"expected N or NAME=N[,NAME=N...], got {text!r}")
    return {name.strip(): arg_types.positive_int(value.strip()) for name, value in pairs}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate, grade and report (resumes what --out already holds)")
    run.add_argument("--model", required=True, help="checkpoint path or hub id (vllm); served model name (openai)")
    run.add_argument("--backend", choices=["vllm", "openai", "ray"], default="vllm",
                     help="vllm: one engine in this process; openai: endpoints (--base-url); ray: --replicas vLLM "
                          "engines on a Ray cluster (RAY_ADDRESS or --ray-address, else a local one)")
    run.add_argument("--base-url", type=arg_types.base_url, action="append", default=[],
                     help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000 (openai backend); repeat it for "
                          "several: each request goes to the one with the fewest in flight, one that fails is "
                          "left out for a while")
    run.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "EMPTY"))
    run.add_argument("--benchmarks", default=",".join(MATH_BENCHMARKS),
                     help=f"comma-separated; known: {', '.join(BENCHMARKS)} (default: the six math sets)")
    run.add_argument("--data", type=data_file, action="append", default=[],
                     help="local problems instead of the hub: LUFFY parquet (valid.all.parquet) or a .jsonl/.parquet "
                          "with problem and answer columns; repeatable")
    run.add_argument("--out", type=arg_types.output_dir, required=True,
                     help="run directory (generations, configs, report)")
    run.add_argument("--n", type=parse_n, default={}, help="samples per problem: N or NAME=N,... "
                     "(default: LUFFY's, 32 for aime24, aime25 and amc, 1 for the rest)")
    run.add_argument("--temperature", type=arg_types.non_negative_float, default=0.6)
    run.add_argument("--top-p", type=arg_types.probability, default=1.0)
    run.add_argument("--max-tokens", type=arg_types.positive_int, default=8192)
    run.add_argument("--seed", type=arg_types.seed, default=0,
                     help="run seed; each sample gets its own seed derived from it")
    run.add_argument("--template", choices=TEMPLATES, default="own",
                     help="own = the checkpoint's chat template on the user message (system prompt dropped)")
    run.add_argument("--limit", type=arg_types.positive_int, help="first N problems per benchmark (smoke runs)")
    run.add_argument("--max-model-len", type=arg_types.positive_int, help="vllm backend: context length")
    run.add_argument("--tensor-parallel-size", type=arg_types.positive_int, default=1,
                     help="vllm/ray backends: GPUs per engine")
    run.add_argument("--max-num-seqs", type=arg_types.positive_int, help="vllm/ray backends: concurrent sequences "
                     "per engine")
    run.add_argument("--replicas", type=arg_types.positive_int, default=1,
                     help="ray backend: engine replicas (each of --tensor-parallel-size GPUs)")
    run.add_argument("--ray-address", help="ray backend: the cluster to join (default: RAY_ADDRESS, else a local one)")
    run.add_argument("--cpus-per-replica", type=arg_types.positive_int, default=1,
                     help="ray backend on CPU nodes: Ray CPUs each replica takes")
    run.add_argument("--concurrency", type=arg_types.positive_int,
                     help="requests in flight per endpoint (openai, default 64) or per replica (ray, default 256)")
    run.add_argument("--max-retries", type=arg_types.non_negative_int, default=5,
                     help="openai backend: retries on 5xx/timeouts")
    run.add_argument("--request-timeout", type=arg_types.positive_float, default=3600.0,
                     help="openai backend: seconds per request")
    run.add_argument("--grading-workers", type=arg_types.positive_int,
                     help="luffy_math grading processes beside generation (default: a quarter of the cores, 1 to 4)")
    run.add_argument("--vote", choices=["full", "adaptive"], default="full",
                     help="adaptive: draw each problem's samples in waves until its majority is settled (maj@k only; "
                          "Adaptive-Consistency's Beta criterion, arXiv 2305.11860); full: all n samples")
    run.add_argument("--vote-confidence", type=open_probability, default=0.95,
                     help="--vote adaptive: stop when the leading answer stays ahead with this probability")
    run.add_argument("--vote-wave", type=arg_types.positive_int,
                     help="--vote adaptive: samples each open problem gets per wave (default: the fewest that could "
                          "settle it)")
    run.add_argument("--no-progress", action="store_true")

    score = sub.add_parser("score", help="(re)grade stored generations, then write the report")
    score.add_argument("path", type=Path, help="run directory, or one generations JSONL")
    score.add_argument("--grading-workers", type=arg_types.positive_int)
    score.add_argument("--no-progress", action="store_true")

    report = sub.add_parser("report", help="print the table and write report.md, report.json, report.png")
    report.add_argument("path", type=Path, help="run directory, or one generations JSONL")

    compare = sub.add_parser("compare", help="runs side by side: differences to the first run with paired "
                             "bootstrap intervals, flipped problems, published rows; compare.md/.json/.png")
    compare.add_argument("runs", type=Path, nargs="+", help="run directories (or generations JSONL), the first "
                         "is the baseline")
    compare.add_argument("--out", type=arg_types.output_dir, help="where the three files go (default: "
                         "RUN_A/compare)")
    compare.add_argument("--against", action="append", default=[], metavar="card:NAME",
                         help="published rows to show beside the runs, e.g. card:luffy-qwen-math-1.5b-zero")
    compare.add_argument("--resamples", type=at_least_1000, default=2000, help="bootstrap resamples (>= 1000)")
    compare.add_argument("--seed", type=arg_types.seed, default=0, help="bootstrap seed")

    replay = sub.add_parser("replay", help="what an adaptive vote would have saved on a run recorded with n samples "
                            "per problem: the stopping rule over random orders; replay.md/.json/.png")
    replay.add_argument("path", type=Path, help="run directory, or one generations JSONL")
    replay.add_argument("--confidence", type=confidences, default=(0.8, 0.9, 0.95, 0.99),
                        help="comma-separated confidences, each in (0, 1) (default 0.8,0.9,0.95,0.99)")
    replay.add_argument("--orders", type=arg_types.positive_int, default=200, help="random orders per problem")
    replay.add_argument("--seed", type=arg_types.seed, default=0, help="seed of the orders")
    replay.add_argument("--grader", choices=GRADERS, default="luffy", help="whose extracted answers vote")
    replay.add_argument("--out", type=arg_types.output_dir, help="where the files go (default: RUN/replay)")
    replay.add_argument("--no-progress", action="store_true")
    return parser


def open_probability(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def confidences(text: str) -> tuple[float, ...]:
    """"0.9" or "0.8,0.95": each strictly between 0 and 1."""
    values = tuple(open_probability(item.strip()) for item in text.split(",") if item.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected confidences like 0.9,0.95, got {text!r}")
    return values


def at_least_1000(text: str) -> int:
    value = arg_types.positive_int(text)
    if value < 1000:
        raise argparse.ArgumentTypeError(f"must be at least 1000, got {value}")
    return value


def command_compare(args: argparse.Namespace) -> None:
    from benchmarks.compare import compare
    from benchmarks.published import reference_rows

    if len(args.runs) < 2:
        raise HarnessError("compare needs at least two runs")
    references = []
    for spec in args.against:
        try:
            references += reference_rows(spec)
        except ValueError as e:
            raise HarnessError(f"--against: {e}") from None
    out = args.out or (args.runs[0] if args.runs[0].is_dir() else args.runs[0].parent) / "compare"
    print(compare(args.runs, out, references, resamples=args.resamples, seed=args.seed))
    print(f"wrote {out / 'compare.md'}, compare.json, compare.png")


def command_run(args: argparse.Namespace) -> None:
    from benchmarks.runner import RunOptions, default_grading_workers, run

    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    if not names:
        raise HarnessError("--benchmarks names no benchmark")
    if args.backend == "openai" and not args.base_url:
        raise HarnessError("--backend openai needs --base-url")
    if args.backend != "openai" and args.base_url:
        raise HarnessError(f"--base-url is for --backend openai, not {args.backend}")
    if args.replicas > 1 and args.backend != "ray":
        raise HarnessError("--replicas is for --backend ray")
    if args.vote != "adaptive" and args.vote_wave is not None:
        raise HarnessError("--vote-wave is for --vote adaptive")
    if args.backend in ("vllm", "ray"):
        try:
            arg_types.model(args.model)
        except argparse.ArgumentTypeError as e:
            raise HarnessError(f"--model {e}") from None
    unknown_n = [k for k in args.n if k != "*" and k not in names]
    if unknown_n:
        raise HarnessError(f"--n names {', '.join(unknown_n)}, which --benchmarks does not")
    sampling = Sampling(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                        template=args.template)
    options = RunOptions(model=args.model, backend=args.backend, benchmarks=names, out=args.out, sampling=sampling,
                         seed=args.seed, n=args.n, data=args.data, limit=args.limit,
                         grading_workers=args.grading_workers, progress=not args.no_progress)

    def make_sampler():
        if args.backend == "openai":
            from benchmarks.samplers.openai_sampler import OpenAISampler

            return OpenAISampler(args.base_url, args.api_key, args.model, concurrency=args.concurrency or 64,
                                 timeout=args.request_timeout, max_retries=args.max_retries)
        math_workers = options.grading_workers or default_grading_workers()
        if args.backend == "ray":
            from benchmarks.samplers.ray_sampler import RaySampler

            return RaySampler(args.model, args.replicas, seed=args.seed, max_model_len=args.max_model_len,
                              tensor_parallel_size=args.tensor_parallel_size, max_num_seqs=args.max_num_seqs,
                              concurrency=args.concurrency or 256, cpus_per_replica=args.cpus_per_replica,
                              math_workers=math_workers, address=args.ray_address).start()
        from benchmarks.samplers.vllm_sampler import VLLMSampler

        try:
            return VLLMSampler.load(args.model, seed=args.seed, max_model_len=args.max_model_len,
                                    tensor_parallel_size=args.tensor_parallel_size, max_num_seqs=args.max_num_seqs,
                                    math_workers=math_workers)
        except Exception as e:  # a wrong path, an unsupported architecture, not enough memory
            raise HarnessError(f"cannot start vLLM on {args.model}: {first_line(e)}") from e

    if args.vote == "adaptive":
        from benchmarks.adaptive import run_adaptive

        print(run_adaptive(options, make_sampler, args.vote_confidence, args.vote_wave))
        return
    print(run(options, make_sampler))


def command_replay(args: argparse.Namespace) -> None:
    from benchmarks.replay import run_replay

    markdown, out = run_replay(args.path, args.out, args.confidence, args.orders, args.seed, args.grader,
                               progress=not args.no_progress)
    print(markdown)
    print(f"wrote {out / 'replay.md'}, replay.json, replay.png")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or a supervisor's stop), handled as Ctrl-C is: what is finished gets stored."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def stop_on_sigterm() -> None:
    """From here on SIGTERM raises :class:`Terminated` in the main thread (``python -m benchmarks`` calls it)."""
    signal.signal(signal.SIGTERM, _terminated)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            command_run(args)
        elif args.command == "score":
            from benchmarks import report
            from benchmarks.score import score

            score(args.path, args.grading_workers, progress=not args.no_progress)
            print(report.build(args.path))
        elif args.command == "compare":
            command_compare(args)
        elif args.command == "replay":
            command_replay(args)
        else:
            from benchmarks import report

            print(report.build(args.path))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a disk that fails under a write not named above: one line, not a traceback
        print(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        why = " (SIGTERM)" if isinstance(e, Terminated) else ""
        print(f"interrupted{why}: finished samples are stored; rerun the same command to resume", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
    return 0
