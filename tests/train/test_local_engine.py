"""The single-process engine on the tiny checkpoint: a few LUFFY steps on demonstrations written here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from luffy_train.cli import main
from luffy_train.config import compose
from luffy_train.data import read_examples
from luffy_train.local_engine import LocalSettings, LocalTrainer, sequence_log_probs
from luffy_train.recipe import LossConfig

# The tiny model answers 42 (sometimes 24); the demonstration teaches a different answer in its format.
DEMO = "Let me add the numbers.\n</think>\n\nThe answer is $\\boxed{7}$."
STEPS = 5


def write_data(path: Path) -> Path:
    rows = [{"data_source": "", "prompt": [{"role": "user", "content": q}],
             "target": [{"role": "assistant", "content": DEMO}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "7"}, "extra_info": {"split": "train", "index": i}}
            for i, q in enumerate(["What is 3+4?", "What is 5+2?"])]
    pd.DataFrame(rows).to_parquet(path)
    return path


def overrides(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [f"actor_rollout_ref.model.path={model}", f"data.train_files={data}", f"trainer.default_local_dir={out}",
            "data.train_batch_size=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
            "actor_rollout_ref.rollout.n=4", "data.max_response_length=40", "actor_rollout_ref.actor.optim.lr=5e-4",
            f"luffy.local.max_steps={STEPS}", "luffy.local.device=cpu", *extra]


def demonstration_logp(model_dir: Path, data: Path, out: Path) -> float:
    """Mean token log-prob of the data's demonstrations under the checkpoint in ``model_dir``."""
    settings = LocalSettings(model=str(model_dir), train_files=str(data), output_dir=out, prompts_per_step=2,
                             mini_batch_prompts=2, n=4, n_off_policy=1, advantage="grpo", use_std=False,
                             max_prompt_length=1024, max_response_length=40, temperature=1.0, lr=0.0, grad_clip=1.0,
                             epochs=1, max_steps=None, save_every=0, device="cpu", seed=0,
                             loss=LossConfig())
    trainer = LocalTrainer(settings, examples=read_examples(data))
    return trainer.demonstration_log_likelihood(trainer.examples)


@pytest.fixture(scope="module")
def luffy_run(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    data = write_data(tmp / "train.parquet")
    out = tmp / "run"
    rc = main(["--config", "luffy-qwen-math-7b-zero", "--engine", "local", "--quiet",
               *overrides(tiny_model_dir, data, out)])
    assert rc == 0
    return out, data


def test_luffy_steps_raise_the_demonstrations_log_likelihood(luffy_run, tiny_model_dir):
    out, data = luffy_run
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    logp = [demonstration_logp(tiny_model_dir, data, out)] + [r["demo_logp"] for r in rows]
    assert logp[-1] > logp[0] + 0.2, logp  # measured: about +0.5 over 5 steps
    assert logp[-1] > logp[1], logp
    for r in rows:
        assert r["reward/off_policy"] == 1.0  # the demonstrations pass LUFFY's reward
        assert 0.0 <= r["reward/on_policy"] <= 1.0
        assert {"on_pg_loss", "off_pg_loss", "off_ratio_mean", "off_policy_prob", "on_policy_prob"} <= set(r)
        assert 0.0 < r["off_ratio_mean"] < 1.0  # p/(p+0.1) of probabilities


def test_writes_a_plot_and_a_loadable_checkpoint(luffy_run):
    out, data = luffy_run
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    ckpt = out / "checkpoint"
    assert (ckpt / "model.safetensors").exists() and (ckpt / "tokenizer.json").exists()
    assert not list(out.glob(".checkpoint.tmp*"))
    # Reloaded from disk, the checkpoint scores the demonstrations as the last step logged.
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert demonstration_logp(ckpt, data, out) == pytest.approx(last["demo_logp"], abs=1e-4)


def test_on_policy_grpo_baseline_runs_without_demonstrations(tiny_model_dir, tmp_path):
    data = write_data(tmp_path / "train.parquet")
    rc = main(["--config", "grpo-on-policy", "--engine", "local", "--quiet",
               *overrides(tiny_model_dir, data, tmp_path / "grpo", "luffy.local.max_steps=1")])
    assert rc == 0
    row = json.loads((tmp_path / "grpo" / "metrics.jsonl").read_text())
    assert row["reward/off_policy"] is None and row["off_policy_prob"] == 0.0


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    data = write_data(tmp_path / "train.parquet")
    rc = main(["--config", "luffy-qwen-math-7b-zero", "--engine", "local", "--quiet",
               *overrides(tmp_path / "no-model", data, tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "o" / "checkpoint").exists()


def test_token_log_probs_match_a_plain_forward(tiny_model_dir, tmp_path):
    """The engine's packed-batch log-probs equal an unpadded forward of each sequence."""
    data = write_data(tmp_path / "train.parquet")
    settings = LocalSettings.from_config(compose("luffy-qwen-math-7b-zero",
                                                 overrides(tiny_model_dir, data, tmp_path / "o")))
    trainer = LocalTrainer(settings)
    batch = trainer.rollout(trainer.examples)
    with torch.no_grad():
        logp, _ = sequence_log_probs(trainer.model, batch, with_entropy=False)
        for i in (0, 1, 4):
            ids = batch.input_ids[i][batch.attention_mask[i].bool()]
            n_resp = int(batch.response_mask[i].sum())
            logits = trainer.model(input_ids=ids[None]).logits[0].float()
            ref = torch.log_softmax(logits, -1)[:-1].gather(-1, ids[1:, None]).squeeze(-1)[-n_resp:]
            assert torch.allclose(logp[i, :n_resp], ref, atol=1e-4)
