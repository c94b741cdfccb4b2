"""Training resumes exactly on the local engine: a run killed with SIGKILL mid-way, or stopped with SIGTERM,
and started again with the same command, takes the steps an uninterrupted run takes (the same prompts,
rollouts, losses and final weights, to the bit) and its metrics.jsonl goes on without a gap or a repeated
step. The runs are real `python -m luffy_train` processes on the tiny checkpoint.

On verl, the session's run (conftest.py: the one test_verl_cpu.py checks) is stopped with SIGTERM during
step 2, resumed and SIGKILLed during step 3, and resumed again; its step 3 is checked against the
uninterrupted run replayed on the local engine (the engines-agree standard of test_verl_cpu.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from luffy_train import checkpoint
from luffy_train.config import compose
from luffy_train.local_engine import LocalSettings, LocalTrainer
from luffy_train.metrics_log import MetricsLog, keep_steps_through

sys.path.insert(0, str(Path(__file__).parent))
from test_verl_cpu import COMPARED, as_local_batch, dumped  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEMO = "Let me add the numbers.\n</think>\n\nThe answer is $\\boxed{7}$."
QUESTIONS = ["What is 3+4?", "What is 5+2?", "What is 1+6?", "What is 2+5?", "What is 6+1?", "What is 4+3?"]
STEPS = 5  # 6 prompts, 2 a step: the epoch ends after step 3 and the order is drawn again
VERL_TIMEOUT = 3600  # the first test to use the session's verl run makes it: three starts of Ray, FSDP, vLLM


def write_data(path: Path, questions: list[str] = QUESTIONS) -> Path:
    rows = [{"data_source": "", "prompt": [{"role": "user", "content": q}],
             "target": [{"role": "assistant", "content": DEMO}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "7"}, "extra_info": {"split": "train", "index": i}}
            for i, q in enumerate(questions)]
    pd.DataFrame(rows).to_parquet(path)
    return path


def command(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "luffy_train", "--config", "luffy-qwen-math-7b-zero", "--engine", "local",
            "--quiet", f"actor_rollout_ref.model.path={model}", f"data.train_files={data}",
            f"trainer.default_local_dir={out}", "data.train_batch_size=2", "actor_rollout_ref.actor.ppo_mini_batch_size=1",
            "actor_rollout_ref.rollout.n=4", "data.max_response_length=24", "actor_rollout_ref.actor.optim.lr=5e-4",
            f"luffy.local.max_steps={STEPS}", "luffy.local.device=cpu", *extra]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    rc = proc.wait(timeout=timeout)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    return text


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def same_steps(got: list[dict], want: list[dict]) -> None:
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    for g, w in zip(got, want, strict=True):
        assert {k: v for k, v in g.items() if not k.startswith("time/")} == \
            {k: v for k, v in w.items() if not k.startswith("time/")}, g["step"]


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.fixture(scope="module")
def runs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three runs of the same command, side by side (tiny processes; together about as quick as one after the
    other): uninterrupted; killed with SIGKILL during step 3 (a checkpoint each step), then started again;
    stopped with SIGTERM after step 1 (checkpoints only at the end), then started again, twice."""
    tmp = tmp_path_factory.mktemp("resume")
    data = write_data(tmp / "train.parquet")
    out = {name: tmp / name for name in ("whole", "killed", "preempted")}
    cmd = {"whole": command(tiny_model_dir, data, out["whole"], "luffy.local.save_every=1"),
           "killed": command(tiny_model_dir, data, out["killed"], "luffy.local.save_every=1"),
           "preempted": command(tiny_model_dir, data, out["preempted"])}
    procs = {name: start(cmd[name], tmp / f"{name}-1.log") for name in cmd}
    # Both runs are watched at once, each stopped at its point whichever comes first (one after the other, the
    # second run could have finished while the first was being stopped): SIGKILL once step 2's checkpoint is on
    # disk (step 3 is under way, its line not written yet); SIGTERM once step 1 is logged.
    points = {"killed": (lambda: (out["killed"] / "step-2").is_dir(), signal.SIGKILL),
              "preempted": (lambda: logged_steps(out["preempted"]) >= 1, signal.SIGTERM)}
    deadline = time.monotonic() + 600
    while points:
        for name, (reached, sig) in list(points.items()):
            if reached():
                os.killpg(procs[name].pid, sig)
                del points[name]
            else:
                assert procs[name].poll() is None, \
                    f"{name} ended before its stop point:\n{(tmp / f'{name}-1.log').read_text()[-3000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    procs["killed"].wait()
    killed_at = logged_steps(out["killed"])
    leftover = out["killed"] / ".step-3.tmp1"  # what a kill in the middle of writing a checkpoint leaves
    leftover.mkdir()
    (leftover / "config.json").write_text("{")
    procs["killed"] = start(cmd["killed"], tmp / "killed-2.log")
    logs = {"preempted-1": finish(procs["preempted"], tmp / "preempted-1.log")}  # exit 0
    stopped = checkpoint.latest(out["preempted"])
    preempted_files = {"stopped": stopped, "logged": logged_steps(out["preempted"]),
                       "final_existed": (out["preempted"] / "checkpoint").exists()}
    procs["preempted"] = start(cmd["preempted"], tmp / "preempted-2.log")
    logs |= {f"{name}-{2 - (name == 'whole')}": finish(p, tmp / f"{name}-{2 - (name == 'whole')}.log")
             for name, p in procs.items()}
    logs["preempted-3"] = finish(start(cmd["preempted"], tmp / "preempted-3.log"), tmp / "preempted-3.log")
    return {**out, "killed_at": killed_at, "logs": logs, **preempted_files}


def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_runs_steps_and_weights(runs):
    assert runs["killed_at"] in (2, 3)  # killed during step 3: after step 2's checkpoint
    assert "resuming after step 2 from" in runs["logs"]["killed-2"]
    assert not list(runs["killed"].glob(".step-*"))  # the half-written save is gone, never taken for a checkpoint
    same_steps(metrics(runs["killed"]), metrics(runs["whole"]))  # no gap, no repeat, the same numbers
    same_weights(runs["killed"] / "checkpoint", runs["whole"] / "checkpoint")


def test_sigterm_saves_at_the_next_step_boundary_exits_0_and_the_run_resumes(runs):
    """save_every=0 (only at the end): SIGTERM still saves, at the end of the step under way, and exits 0."""
    out, saved = runs["preempted"], runs["stopped"]
    stopped_after = int(saved.name.removeprefix("step-"))
    assert saved == out / f"step-{stopped_after}" and 1 <= stopped_after < STEPS
    assert f"stopped after step {stopped_after} of {STEPS}" in runs["logs"]["preempted-1"]
    assert runs["logged"] == stopped_after and not runs["final_existed"]
    assert f"resuming after step {stopped_after}" in runs["logs"]["preempted-2"]
    same_steps(metrics(out), metrics(runs["whole"]))
    same_weights(out / "checkpoint", runs["whole"] / "checkpoint")
    # Started again once finished, it has nothing left to do and leaves the run as it is.
    assert f"resuming after step {STEPS}" in runs["logs"]["preempted-3"]
    assert [r["step"] for r in metrics(out)] == list(range(1, STEPS + 1))


def test_checkpoints_are_plain_hf_ones_with_the_training_state_beside_them(runs):
    from transformers import AutoModelForCausalLM

    out = runs["killed"]
    final = out / "checkpoint"
    assert checkpoint.latest(out) == final and checkpoint.saved_step(final) == STEPS
    assert {p.name for p in final.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                 checkpoint.STATE_DIR}
    # Only the newest checkpoint keeps the optimizer; every step-K keeps its weights.
    assert sorted(p.name for p in out.glob(f"*/{checkpoint.STATE_DIR}")) == [checkpoint.STATE_DIR]
    assert all((out / f"step-{k}" / "model.safetensors").is_file() for k in range(1, STEPS))
    model = AutoModelForCausalLM.from_pretrained(out / "step-2")
    saved = load_file(out / "step-2" / "model.safetensors")
    assert torch.equal(model.state_dict()["model.embed_tokens.weight"], saved["model.embed_tokens.weight"])


def test_the_metrics_log_keeps_the_steps_a_resumed_run_continues_after(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in (1, 2, 3):
        log.write(step, {"loss": float(step)})
    with path.open("a") as f:
        f.write('{"step": 4, "lo')  # a line torn by the kill
    MetricsLog(path, resume_after=2)  # resumed after step 2: step 3 was logged past the checkpoint
    assert [r["step"] for r in MetricsLog(path, resume_after=2).rows()] == [1, 2]
    assert keep_steps_through(path, 5) == 2
    MetricsLog(path)  # a fresh run starts the file afresh
    assert path.read_text() == ""



@pytest.mark.parametrize(("engine", "overrides", "error"), [
    ("local", ["trainer.resume_mode=sometimes"],
     "error: trainer.resume_mode: must be one of auto, disable, resume_path, got sometimes"),
    ("local", ["trainer.resume_mode=resume_path", "trainer.resume_from_path=/nowhere/step-3"],
     "error: trainer.resume_from_path: not a local-engine checkpoint with its training state "
     "(RUN/step-K or RUN/checkpoint), got /nowhere/step-3"),
    ("verl", ["trainer.resume_mode=resume_path", "trainer.resume_from_path=/nowhere/step-3"],
     "error: trainer.resume_from_path: not a verl checkpoint folder (RUN/global_step_K), got /nowhere/step-3"),
])
def test_bad_resume_keys_are_one_line_before_anything_loads(tmp_path, engine, overrides, error):
    from cli_errors import refusal, run_cli

    model = tmp_path / "ckpt"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}')
    args = ["--config", "luffy-qwen-math-1.5b-zero", "--engine", engine, f"actor_rollout_ref.model.path={model}",
            f"data.train_files={write_data(tmp_path / 'train.parquet')}", f"trainer.default_local_dir={tmp_path / 'out'}",
            *overrides]
    result = run_cli("luffy_train", args, tmp_path, forbid=("torch", "transformers", "ray", "vllm"))
    assert refusal(result, tmp_path) == error
    assert not (tmp_path / "out").exists()

# -- verl: the session's run (conftest.py), stopped with SIGTERM in step 2, killed in step 3, resumed --------


@pytest.mark.timeout(VERL_TIMEOUT)
def test_verl_sigterm_saves_the_step_logs_it_and_exits_0_with_nothing_left(verl_run):
    after = verl_run["after_sigterm"]
    assert after["rc"] == 0, after["log"][-3000:]
    assert after["left"] == []  # Ray, its workers and the vLLM server went with it
    assert "stopped after step 2 (SIGTERM)" in after["log"]
    assert [json.loads(line)["step"] for line in after["metrics"].splitlines()] == [1, 2]
    assert after["tracker"] == "2"


@pytest.mark.timeout(VERL_TIMEOUT)
def test_verl_killed_during_step_3_resumes_after_step_2_and_metrics_go_on(verl_run):
    after = verl_run["after_kill"]
    assert after["tracker"] == "2"  # the kill came before step 3's checkpoint
    assert [json.loads(line)["step"] for line in after["metrics"].splitlines()] == [1, 2]
    assert "Resuming from" in verl_run["resumed_log"] and "global_step_2" in verl_run["resumed_log"]
    assert verl_run["logged_steps"] == [1, 2, 3]  # no gap, no repeat (verl's own logger would start it empty)
    # The data position came back: step 3 trained on the 5th and 6th prompts, not the 1st and 2nd again.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(verl_run["model"])
    for step, questions in ((1, QUESTIONS[:2]), (2, QUESTIONS[2:4]), (3, QUESTIONS[4:])):
        prompts = [tok.decode(row, skip_special_tokens=True) for row in dumped(verl_run, step)["prompts"]]
        asked = [[q for q in QUESTIONS if q in p] for p in prompts]  # verl reorders rows (_balance_batch)
        assert sorted(q for (q,) in asked) == sorted(questions * 4), (step, asked)


@pytest.mark.timeout(VERL_TIMEOUT)
def test_verl_step_3_after_the_resume_is_the_uninterrupted_runs_step_3(verl_run):
    """The uninterrupted run, replayed: the local engine from the initial weights updates on verl's three
    batches (LUFFY's demonstration rows and prefix masks included) with one AdamW. Its step-3 loss equals what
    the resumed verl run logged, and its weights equal the resumed run's step-3 checkpoint: verl brought back
    the weights, the optimizer's moments and the LUFFY rows. Without the optimizer's state (a fresh AdamW from
    step 2's weights), the step-3 weights come out elsewhere, far outside the tolerance."""
    settings = LocalSettings.from_config(compose("luffy-tiny-cpu", verl_run["overrides"]))
    settings.device = "cpu"
    trainer = LocalTrainer(settings, examples=[])
    for step in (1, 2, 3):
        local = trainer.update(as_local_batch(dumped(verl_run, step)))
    logged = verl_run["steps"][3]
    for name in COMPARED:
        assert local[name] == pytest.approx(logged[f"actor/{name}"], rel=1e-5, abs=1e-6), name
    saved = load_file(verl_run["out"] / "global_step_3" / "actor" / "huggingface" / "model.safetensors")
    replayed = trainer.model.state_dict()
    gap = max(float((replayed[k] - v).abs().max()) for k, v in saved.items())
    # The two engines sum in float32 in different orders, and AdamW can turn a last-bit difference in a
    # near-zero gradient into a visible share of one step (lr 5e-4) on that weight: 1e-5 is 2 % of a step.
    print(f"largest weight gap: replayed {gap:.3g}")
    assert gap < 1e-5, gap

    settings.model = str(verl_run["out"] / "global_step_2" / "actor" / "huggingface")
    fresh = LocalTrainer(settings, examples=[])
    fresh.update(as_local_batch(dumped(verl_run, 3)))
    fresh_gap = max(float((fresh.model.state_dict()[k] - v).abs().max()) for k, v in saved.items())
    print(f"largest weight gap: fresh optimizer {fresh_gap:.3g}")
    assert fresh_gap > 10 * max(gap, 1e-6), (fresh_gap, gap)
