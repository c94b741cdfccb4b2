"""The verl version guard: verl 0.9.x with its legacy trainer (main_ppo_v0), and trainer.use_v1=false; anything
else is one line naming what was found, the fix and the docs section."""

from __future__ import annotations

import importlib.metadata

import pytest

from luffy_train import verl_support
from luffy_train.config import compose
from luffy_train.errors import ConfigError

FIX = "bash scripts/setup.sh train"
SECTION = "docs/luffy_train.md, 'Which verl trainer'"


def refusal(**kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        verl_support.check_verl(**kwargs)
    message = str(err.value)
    assert "\n" not in message and FIX in message and SECTION in message, message
    assert message.startswith("luffy_train runs on verl's legacy trainer (main_ppo_v0, trainer.use_v1=false), "
                              "verl 0.9.x; "), message
    return message


def test_the_installed_verl_passes():
    version, package = verl_support.installed_verl()
    assert verl_support.release(version) == (0, 9) and (package / "trainer" / "main_ppo_v0.py").is_file()
    verl_support.check_verl()


@pytest.mark.parametrize("version", ["0.10.0", "0.8.5", "1.0.0", "nightly"])
def test_another_verl_version_is_refused(monkeypatch, version):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version if name == "verl" else real(name))
    assert f"; found verl {version};" in refusal()


def test_a_verl_without_the_legacy_trainer_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(verl_support, "installed_verl", lambda: ("0.9.2", tmp_path))
    assert "found verl 0.9.2 without verl/trainer/main_ppo_v0.py" in refusal()


def test_no_verl_is_refused(monkeypatch):
    monkeypatch.setattr(verl_support, "installed_verl", lambda: (None, None))
    assert "found no verl in this environment" in refusal()


def test_the_v1_trainer_is_refused():
    assert "the config sets trainer.use_v1=true" in refusal(use_v1=True)
    with pytest.raises(ConfigError, match="trainer.use_v1=true"):
        compose("luffy-qwen-math-7b-zero", ["trainer.use_v1=true"])


def test_the_local_engine_does_not_need_the_legacy_trainer():
    assert compose("luffy-qwen-math-7b-zero", ["trainer.use_v1=true"], engine="local").trainer.use_v1 is True


def test_release():
    assert verl_support.release("0.9.1") == (0, 9) and verl_support.release("0.9.1rc2") == (0, 9)
    assert verl_support.release("0.10.0.dev1") == (0, 10) and verl_support.release("main") is None
