"""``python -m luffy_train``: train (verl or the local engine), dry-run a config, or prepare data."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from luffy_train import stopping
from luffy_train.config import available, compose, to_yaml
from luffy_train.data import HUB_DATASET, DataError, load_frame, prepare, validate
from luffy_train.errors import ConfigError
from luffy_train.verl_support import check_config
from luffy_util import arg_types


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m luffy_train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train with a named config (the default command)")
    train.add_argument("--config", required=True, help=f"one of: {', '.join(available())}")
    train.add_argument("--engine", choices=("verl", "local"), default="verl",
                       help="verl: Ray + GPUs (one node or many); local: one process, transformers + AdamW")
    train.add_argument("--dry-run", action="store_true",
                       help="print the resolved config, run verl's config checks, check the data, stop")
    train.add_argument("--quiet", action="store_true", help="no progress bar (local engine)")
    train.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.train_batch_size=64 luffy.n_off_policy=1")

    data = sub.add_parser("data", help="write the OpenR1 hub dataset or a local parquet in training format")
    data.add_argument("source", nargs="?", default=HUB_DATASET, help=f"parquet path or hub name (default {HUB_DATASET})")
    data.add_argument("out", type=arg_types.output_file, help="output parquet path")
    data.add_argument("--split", default="train")
    data.add_argument("--system-prompt", default=None, help="system message for flat (problem/answer) data")
    data.add_argument("--max-rows", type=arg_types.positive_int, default=None)
    data.add_argument("--drop-bad", action="store_true", help="drop invalid rows instead of failing")

    sub.add_parser("configs", help="list the configs")
    return parser


def _check_data(cfg) -> str:
    """Validate the train (and, when present, validation) files the config names."""
    need_target = cfg.luffy.n_off_policy > 0
    train = validate(load_frame(str(cfg.data.train_files)), need_target=need_target)
    lines = [f"train data: {cfg.data.train_files}: {len(train)} rows ok"]
    val_files = cfg.data.get("val_files")
    if val_files and Path(str(val_files)).exists():
        val = validate(load_frame(str(val_files)), need_target=False)
        lines.append(f"validation data: {val_files}: {len(val)} rows ok")
    return "\n".join(lines)


RESUME_MODES = ("auto", "disable", "resume_path")


def _check_resume(cfg, engine: str) -> None:
    """``trainer.resume_mode`` (both engines read verl's keys) and, in resume_path mode, the checkpoint named."""
    mode, path = cfg.trainer.get("resume_mode", "auto"), cfg.trainer.get("resume_from_path")
    if mode not in RESUME_MODES:
        raise ConfigError(f"trainer.resume_mode: must be one of {', '.join(RESUME_MODES)}, got {mode}")
    if mode != "resume_path":
        return
    if engine == "local":
        from luffy_train.checkpoint import saved_step

        if path is None or saved_step(Path(str(path))) is None:
            raise ConfigError(f"trainer.resume_from_path: not a local-engine checkpoint with its training state "
                              f"(RUN/step-K or RUN/checkpoint), got {path}")
    elif path is None or "global_step_" not in Path(str(path)).name or not Path(str(path)).is_dir():
        raise ConfigError(f"trainer.resume_from_path: not a verl checkpoint folder (RUN/global_step_K), got {path}")


def _check_before_loading(cfg, engine: str) -> None:
    """What can be checked without loading anything: the model's path, and the local engine's own needs."""
    _check_resume(cfg, engine)
    try:
        arg_types.check("actor_rollout_ref.model.path", cfg.actor_rollout_ref.model.path, arg_types.model)
        if engine == "local":
            arg_types.check("trainer.default_local_dir", cfg.trainer.default_local_dir, arg_types.output_dir)
            # The local engine samples (do_sample); a temperature of 0 is greedy decoding, which it has not.
            arg_types.check("actor_rollout_ref.rollout.temperature", cfg.actor_rollout_ref.rollout.temperature,
                            arg_types.positive_float)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv.insert(0, "train")  # `python -m luffy_train --config NAME` is the train command
    args = _parser().parse_args(argv)
    try:
        if args.command == "configs":
            print("\n".join(available()))
            return 0
        if args.command == "data":
            kept, read = prepare(args.source, args.out, split=args.split, system_prompt=args.system_prompt,
                                 max_rows=args.max_rows, drop_bad=args.drop_bad)
            print(f"wrote {kept} rows ({read - kept if args.drop_bad else 0} dropped) to {args.out}")
            return 0
        cfg = compose(args.config, args.overrides, engine=args.engine)
        _check_before_loading(cfg, args.engine)
        if args.engine == "verl" and cfg.trainer.device == "cpu":
            os.environ.setdefault("VERL_PLATFORM", "cpu")  # before verl is imported: it picks a platform once
        if args.dry_run:
            check_config(cfg)  # the verl this runs on, before verl_integration imports main_ppo_v0
            print(to_yaml(cfg))
            from luffy_train.verl_integration import validate as verl_validate

            verl_validate(cfg)  # verl's own checks (batch sizes vs GPUs, and so on)
            print(_check_data(cfg))
            return 0
        stopping.install()  # SIGTERM: save at the next step boundary, exit 0 (the same command resumes)
        if args.engine == "local":
            _check_data(cfg)  # before the model loads
            from luffy_train.local_engine import train

            print(f"checkpoint: {train(cfg, progress=not args.quiet)}")
            return 0
        _check_data(cfg)
        from luffy_train.verl_integration import launch

        launch(cfg)
        return 0
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
