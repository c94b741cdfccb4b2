"""The data command and config dry-run through the real CLI: good data passes, bad rows get a one-line error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from luffy_train.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = "Adding.\n</think>\n\nThe answer is $\\boxed{7}$."


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luffy_train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def training_rows(n: int) -> list[dict]:
    return [{"data_source": "", "prompt": [{"role": "system", "content": "Think."},
                                           {"role": "user", "content": f"What is {i}+{7 - i}?"}],
             "target": [{"role": "assistant", "content": DEMO}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "7"}, "extra_info": {"split": "train", "index": i}}
            for i in range(n)]


def test_local_parquet_in_training_format_is_copied(tmp_path):
    src, out = tmp_path / "src.parquet", tmp_path / "out" / "train.parquet"
    pd.DataFrame(training_rows(3)).to_parquet(src)
    result = cli("data", str(src), str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 3 rows" in result.stdout
    back = pd.read_parquet(out)
    assert back["reward_model"][0]["ground_truth"] == "7"
    assert back["target"][0][0]["content"] == DEMO


def test_flat_parquet_is_converted(tmp_path):
    src, out = tmp_path / "flat.parquet", tmp_path / "train.parquet"
    pd.DataFrame({"problem": ["1+6?", "2+5?"], "answer": ["7", "7"], "demonstration": [DEMO, DEMO]}).to_parquet(src)
    result = cli("data", str(src), str(out), "--system-prompt", "Think first.")
    assert result.returncode == 0, result.stderr
    row = pd.read_parquet(out).iloc[1]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][1]["content"] == "2+5?"


def test_bad_rows_are_rejected_with_a_clear_message_and_no_output(tmp_path):
    rows = training_rows(4)
    rows[1]["target"] = []
    rows[3]["reward_model"] = {"style": "rule", "ground_truth": ""}
    src, out = tmp_path / "bad.parquet", tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(src)
    result = cli("data", str(src), str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "2 of 4 rows are invalid: row 1: target is missing" in result.stderr
    assert "row 3: reward_model.ground_truth is missing or empty" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".train.parquet*"))
    dropped = cli("data", str(src), str(out), "--drop-bad")
    assert dropped.returncode == 0, dropped.stderr
    assert len(pd.read_parquet(out)) == 2


def test_missing_and_non_parquet_sources(tmp_path):
    result = cli("data", str(tmp_path / "nope.parquet"), str(tmp_path / "o.parquet"))
    assert result.returncode == 2 and "no such file" in result.stderr and "Traceback" not in result.stderr
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    result = cli("data", str(junk), str(tmp_path / "o.parquet"))
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_resolved_verl_config_and_checks_data(tmp_path):
    src = tmp_path / "train.parquet"
    pd.DataFrame(training_rows(2)).to_parquet(src)
    result = cli("--config", "luffy-qwen-math-1.5b-zero", "--dry-run", f"data.train_files={src}",
                 f"data.val_files={src}", "trainer.n_gpus_per_node=2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "path: Qwen/Qwen2.5-Math-1.5B" in out
    assert "norm_adv_by_std_in_grpo: false" in out
    assert "loss_normalizer: 8192" in out  # interpolations resolved
    assert "agent_loop_manager_class: luffy_train.verl_agent_loop.LuffyAgentLoopManager" in out
    assert "train data: " in out and "2 rows ok" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "no-such-config", "--dry-run"], "unknown config 'no-such-config'"),
    (["--config", "luffy-qwen-math-7b-zero", "--dry-run", "data.no_such_key=1"], "bad override"),
    (["--config", "luffy-qwen-math-7b-zero", "--dry-run", "luffy.n_off_policy=9"], "n_off_policy=9"),
    (["--config", "luffy-qwen-math-7b-zero", "--dry-run", "actor_rollout_ref.rollout.temperature=0"],
     "verl rejects the config"),
    (["--config", "luffy-qwen-math-7b-zero", "--dry-run", "data.train_files=/nonexistent/x.parquet"],
     "no such file"),
])
def test_dry_run_errors_are_one_line(args, message, capsys):
    # In-process (the same main() the CLI runs) to keep the suite fast; the subprocess tests above cover
    # the real entry point.
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [err.splitlines()[-1]]
    assert "Traceback" not in err
