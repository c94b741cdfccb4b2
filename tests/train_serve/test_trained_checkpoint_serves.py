"""A checkpoint written by the local trainer (trainer env) is loaded and run by real vLLM (serving env).
(The verl run's checkpoint is served from tests/train/test_verl_cpu.py, which already has that run.)

The trainer pins transformers<5.11 and vLLM needs >=5.16, so training runs in `.venv-train` as a
subprocess and this test, in the serving env, loads what it wrote.
"""

from __future__ import annotations

import gc
import json
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

