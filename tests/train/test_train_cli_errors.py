"""``python -m luffy_train`` under bad input: exit 2, one error line, nothing written, no model or engine loaded.

Each command runs through the trainer's ``main`` in this process with tripwires on torch, transformers, ray and
vLLM (tests/cli_errors.py): a refusal that reached a model or the trainer would import them. verl itself gets
none: the config step looks up its config directory, which a stand-in would hide; verl cannot be imported
without torch anyway. One runs as a subprocess, as a user runs it, so that what ``python -m luffy_train``
imports on its way in is checked too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cli_errors import call_main, refusal, run_cli

from luffy_train.cli import main

HEAVY = ("torch", "transformers", "ray", "vllm")
CONFIG = "luffy-qwen-math-1.5b-zero"


def training_data(path: Path) -> Path:
    rows = [{"data_source": "", "prompt": [{"role": "user", "content": "What is 3+4?"}],
             "target": [{"role": "assistant", "content": "3+4=7.\n</think>\n\n$\\boxed{7}$"}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "7"}, "extra_info": {"split": "train", "index": 0}}]
    pd.DataFrame(rows).to_parquet(path)
    return path


def checkpoint_dir(tmp_path: Path) -> Path:
    """Passes the model check (config.json); the tripwires stop anything that would load it."""
    path = tmp_path / "ckpt"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text('{"model_type": "qwen2"}')
    return path


def train_args(tmp_path: Path, *overrides: str, engine: str = "local", extra: tuple[str, ...] = ()) -> list[str]:
    """A train command on valid data, a valid model and an unused out dir, with ``overrides``."""
    defaults = [f"actor_rollout_ref.model.path={checkpoint_dir(tmp_path)}",
                f"data.train_files={training_data(tmp_path / 'train.parquet')}",
                f"trainer.default_local_dir={tmp_path / 'out'}", "luffy.local.device=cpu"]
    return ["--config", CONFIG, "--engine", engine, "--quiet", *extra, *defaults, *overrides]


def train(tmp_path: Path, *overrides: str, engine: str = "local", extra: tuple[str, ...] = ()) -> str:
    """The refusal's error line for ``train_args``."""
    result = call_main(main, train_args(tmp_path, *overrides, engine=engine, extra=extra), tmp_path, forbid=HEAVY)
    line = refusal(result, tmp_path)
    assert not (tmp_path / "out").exists()
    return line


def test_the_command_refuses_in_one_line_before_anything_loads(tmp_path: Path) -> None:
    """As a user runs it: ``python -m luffy_train`` in a fresh interpreter, on data that only reading finds bad
    (the longest way before the model would load: the config, its checks, the SIGTERM handler, the data)."""
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    result = run_cli("luffy_train", train_args(tmp_path, f"data.train_files={junk}"), tmp_path, forbid=HEAVY)
    assert refusal(result, tmp_path).startswith(f"error: cannot read {junk} as parquet")
    assert not (tmp_path / "out").exists()


def test_model_dir_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    """The issue's case: the local engine on a directory without config.json ended in a transformers traceback."""
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    line = train(tmp_path, f"actor_rollout_ref.model.path={empty}")
    assert line == (f"error: actor_rollout_ref.model.path: {empty}: a directory without config.json, "
                    "not a model checkpoint")


@pytest.mark.parametrize("engine", ["local", "verl"])
def test_model_path_that_does_not_exist(tmp_path: Path, engine: str) -> None:
    line = train(tmp_path, f"actor_rollout_ref.model.path={tmp_path / 'gone'}", engine=engine)
    assert line == (f"error: actor_rollout_ref.model.path: {tmp_path / 'gone'}: no such checkpoint directory, "
                    "and not a hub id (org/name)")


BAD_VALUES = [
    ("actor_rollout_ref.rollout.n=-3", "actor_rollout_ref.rollout.n: must be at least 1, got -3"),
    ("actor_rollout_ref.rollout.n=many", "actor_rollout_ref.rollout.n: expected an integer, got 'many'"),
    ("actor_rollout_ref.rollout.temperature=-1", "actor_rollout_ref.rollout.temperature: must be 0 or more, got -1"),
    ("actor_rollout_ref.rollout.top_p=0", "actor_rollout_ref.rollout.top_p: must be more than 0 and at most 1, got 0"),
    ("actor_rollout_ref.rollout.top_p=1.5",
     "actor_rollout_ref.rollout.top_p: must be more than 0 and at most 1, got 1.5"),
    ("data.train_batch_size=0", "data.train_batch_size: must be at least 1, got 0"),
    ("data.max_response_length=0", "data.max_response_length: must be at least 1, got 0"),
    ("actor_rollout_ref.actor.ppo_mini_batch_size=0",
     "actor_rollout_ref.actor.ppo_mini_batch_size: must be at least 1, got 0"),
    ("actor_rollout_ref.actor.optim.lr=-1e-6", "actor_rollout_ref.actor.optim.lr: must be 0 or more, got -1e-06"),
    ("trainer.total_epochs=0", "trainer.total_epochs: must be at least 1, got 0"),
    ("luffy.n_off_policy=-1", "luffy.n_off_policy: must be 0 or more, got -1"),
    ("luffy.local.max_steps=0", "luffy.local.max_steps: must be at least 1, got 0"),
    ("luffy.local.save_every=-1", "luffy.local.save_every: must be 0 or more, got -1"),
    ("luffy.local.seed=-5", "luffy.local.seed: a seed must be between 0 and 4294967295, got -5"),
    ("luffy.local.device=gpu", "luffy.local.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_config_value(tmp_path: Path, override: str, message: str) -> None:
    assert train(tmp_path, override) == f"error: {message}"


def test_bad_value_in_a_dry_run(tmp_path: Path) -> None:
    assert train(tmp_path, "actor_rollout_ref.rollout.n=0", engine="verl", extra=("--dry-run",)) == (
        "error: actor_rollout_ref.rollout.n: must be at least 1, got 0")


VERL_REFUSAL = ("error: luffy_train runs on verl's legacy trainer (main_ppo_v0, trainer.use_v1=false), verl 0.9.x; "
                "{found}; rebuild the trainer's environment with `bash scripts/setup.sh train`; see "
                "docs/luffy_train.md, 'Which verl trainer'")


@pytest.mark.parametrize("extra", [(), ("--dry-run",)])
def test_verls_v1_trainer_is_refused(tmp_path: Path, extra: tuple[str, ...]) -> None:
    assert train(tmp_path, "trainer.use_v1=true", engine="verl", extra=extra) == VERL_REFUSAL.format(
        found="the config sets trainer.use_v1=true (verl's V1 trainer), which it does not support; "
              "set trainer.use_v1=false")


@pytest.mark.parametrize("extra", [(), ("--dry-run",)])
def test_another_verl_version_is_refused(tmp_path: Path, extra: tuple[str, ...],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A verl distribution found first on the path says 0.10.0 (verl's package stays the installed one)."""
    dist = tmp_path / "site" / "verl-0.10.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: verl\nVersion: 0.10.0\n")
    monkeypatch.syspath_prepend(tmp_path / "site")
    result = call_main(main, ["--config", CONFIG, "--engine", "verl", *extra,
                              f"actor_rollout_ref.model.path={checkpoint_dir(tmp_path)}",
                              f"data.train_files={training_data(tmp_path / 'train.parquet')}",
                              f"trainer.default_local_dir={tmp_path / 'out'}"], tmp_path, forbid=HEAVY)
    assert refusal(result, tmp_path) == VERL_REFUSAL.format(found="found verl 0.10.0")
    assert not (tmp_path / "out").exists()


def test_local_engine_needs_a_sampling_temperature(tmp_path: Path) -> None:
    line = train(tmp_path, "actor_rollout_ref.rollout.temperature=0")
    assert line == "error: actor_rollout_ref.rollout.temperature: must be more than 0, got 0"


def test_local_engine_checks_the_data_before_the_model(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    assert train(tmp_path, f"data.train_files={junk}").startswith(f"error: cannot read {junk} as parquet")
    no_target = tmp_path / "no-target.parquet"
    frame = pd.read_parquet(training_data(tmp_path / "good.parquet"))
    frame["target"] = [[]]
    frame.to_parquet(no_target)
    assert train(tmp_path, f"data.train_files={no_target}") == (
        "error: 1 of 1 rows are invalid: row 0: target is missing (expected [{role: assistant, content: <trace>}])")


def test_output_dir_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    line = train(tmp_path, f"trainer.default_local_dir={blocker / 'run'}")
    assert line == f"error: trainer.default_local_dir: {blocker / 'run'}: {blocker} is not a directory"
    assert blocker.read_text() == "mine"


def data_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return call_main(main, ["data", *args], tmp_path, forbid=HEAVY)


def test_data_command_flags(tmp_path: Path) -> None:
    src = training_data(tmp_path / "src.parquet")
    line = refusal(data_command(tmp_path, str(src), str(tmp_path / "o.parquet"), "--max-rows", "0"), tmp_path)
    assert line.endswith("argument --max-rows: must be at least 1, got 0")
    line = refusal(data_command(tmp_path, str(src), str(tmp_path)), tmp_path)
    assert line.endswith(f"argument out: {tmp_path}: is a directory, expected a file path")
    assert not (tmp_path / "o.parquet").exists()


def test_configs_compose_as_with_verls_package_path() -> None:
    """The config search path is verl's config directory, found without importing verl (fast refusals);
    every config must compose exactly as through ``pkg://verl.trainer.config``."""
    from omegaconf import OmegaConf

    from luffy_train import config

    found = {name: OmegaConf.to_yaml(config.compose(name), resolve=True) for name in config.available()}
    original = config.verl_searchpath
    try:
        config.verl_searchpath = lambda: "hydra.searchpath=[pkg://verl.trainer.config]"
        through_package = {name: OmegaConf.to_yaml(config.compose(name), resolve=True)
                           for name in config.available()}
    finally:
        config.verl_searchpath = original
    assert found == through_package and len(found) == len(config.available()) > 5
