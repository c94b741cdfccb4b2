"""The luffy-serve command line without an engine: model resolution and the one-line failures."""

from __future__ import annotations

import os
import subprocess
import sys

from luffy_serve.cli import parse_args
from luffy_serve.registry import CHECKPOINTS


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "luffy_serve", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_registry_name_resolves_to_hub_id_with_card_sampling():
    args = parse_args(["--model", "luffy-qwen-math-1.5b-zero"])
    assert args.model == "Elliott/LUFFY-Qwen-Math-1.5B-Zero"
    assert args.served_model_name == ["luffy-qwen-math-1.5b-zero"]
    assert args.override_generation_config == {"temperature": 0.6, "max_new_tokens": 8192}
    assert args.reasoning_parser == "deepseek_r1"


def test_default_model_is_the_1_5b_and_user_overrides_win():
    args = parse_args(["--override-generation-config", '{"temperature": 1.0}'])
    assert args.model == CHECKPOINTS["luffy-qwen-math-1.5b-zero"].hub_id
    assert args.override_generation_config == {"temperature": 1.0, "max_new_tokens": 8192}


def test_every_registry_entry_is_a_hub_id():
    assert set(CHECKPOINTS) == {"luffy-qwen-math-1.5b-zero", "luffy-qwen-math-7b-zero", "luffy-qwen-math-7b-sft",
                                "luffy-qwen-math-7b-sft-rl", "luffy-qwen-instruct-7b"}
    assert all(c.hub_id.startswith("Elliott/") for c in CHECKPOINTS.values())


def test_missing_directory_is_one_line_and_exit_2(tmp_path):
    result = run_cli("--model", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("luffy-serve: error: cannot find model")


def test_typo_in_registry_name_suggests_the_right_one():
    result = run_cli("--model", "luffy-qwen-math-1.5b-zer")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "did you mean 'luffy-qwen-math-1.5b-zero'" in result.stderr.strip().splitlines()[-1]


def test_directory_without_config_is_refused(tmp_path):
    result = run_cli("--model", str(tmp_path))
    assert result.returncode == 2
    assert "without config.json" in result.stderr.strip().splitlines()[-1]


def test_tiny_checkpoint_loads_in_transformers_and_keeps_its_format(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.head_dim == 128
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 3 + 4?"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=40, do_sample=False)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "</think>" in text and "\\boxed{42}" in text
