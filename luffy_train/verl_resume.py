"""Resume and preemption on verl: verl's own checkpoints, with what a LUFFY run needs around them.

verl saves ``RUN/global_step_K/`` (the actor's weights, optimizer, scheduler and RNG states per rank, and the
dataloader's position in ``data.pt``), writes ``latest_checkpointed_iteration.txt`` last, and with
``trainer.resume_mode=auto`` a restarted run loads the newest. ``ResumableTrainer`` (a mixin before
``RayPPOTrainer``) adds:

- **metrics.jsonl goes on.** verl's file logger opens the file with ``"wb"``, so a resumed run would start it
  empty; ``AppendingFileLogger`` appends, and the lines of steps after the checkpoint resumed from (logged
  before the run died) are cut. A checkpoint becomes the latest only once its step's line is written (verl
  logs a step after saving it), so a run killed in between redoes that step rather than leaving a gap.
- **A torn tracker file** (a kill while verl rewrites it) is rebuilt from the newest complete
  ``global_step_K`` (one with ``data.pt``, which verl writes after the actor's files).
- **SIGTERM.** The driver (``StoppableRunner``) sets a named Ray actor, ``StopFlag``; the trainer reads it after
  each actor update, saves that step if verl would not, logs it, and ``fit`` returns before the next step.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path
from typing import Any

import ray
from verl.utils import tracking
from verl.utils.tracking import FileLogger

from luffy_train import stopping
from luffy_train.metrics_log import keep_steps_through

STOP_FLAG = "luffy_stop_flag"
TRACKER = "latest_checkpointed_iteration.txt"  # verl's name (verl.utils.checkpoint.checkpoint_manager)


@ray.remote(num_cpus=0)
class StopFlag:
    """Set by the driver on SIGTERM; the trainer (in Ray's task-runner actor) reads it at step boundaries."""

    def __init__(self) -> None:
        self.stop = False

    def set(self) -> None:
        self.stop = True

    def is_set(self) -> bool:
        return self.stop


class StoppableRunner:
    """What ``run_ppo`` is given as ``task_runner_class``: it is called after run_ppo's ``ray.init``, which sets
    Ray's own SIGTERM handler, so it puts ours back (``stopping``), creates the ``StopFlag`` and a thread that
    sets it on SIGTERM, then the task runner."""

    def __init__(self, runner_class: Any) -> None:
        self.runner_class = runner_class
        self.flag = None

    def _prepare(self) -> None:
        stopping.install()
        self.flag = StopFlag.options(name=STOP_FLAG).remote()
        threading.Thread(target=self._forward, daemon=True, name="luffy-sigterm").start()

    def _forward(self) -> None:
        stopping.wait()
        ray.get(self.flag.set.remote())

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        self._prepare()
        return self.runner_class.remote(*args, **kwargs)

    def options(self, **kwargs: Any) -> Any:
        self._prepare()
        return self.runner_class.options(**kwargs)


def file_logger_path(project_name: str, experiment_name: str) -> Path:
    """Where verl's file logger writes (``VERL_FILE_LOGGER_PATH``, else ``ROOT/project/experiment.jsonl``)."""
    path = os.getenv("VERL_FILE_LOGGER_PATH")
    if path:
        return Path(path)
    root = Path(os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", ".")))
    return root / project_name / f"{experiment_name}.jsonl"


class AppendingFileLogger(FileLogger):
    """verl's file logger, appending instead of truncating; each line reaches the disk before ``on_logged(step)``."""

    def __init__(self, project_name: str, experiment_name: str, on_logged: Any = None) -> None:
        self.project_name, self.experiment_name = project_name, experiment_name
        path = file_logger_path(project_name, experiment_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.filepath = str(path)
        self.fp = open(path, "ab", buffering=0)  # noqa: SIM115 (verl's logger keeps it open; finish closes it)
        self.on_logged = on_logged

    def log(self, data: dict, step: int) -> None:
        super().log(data, step)
        os.fsync(self.fp.fileno())
        if self.on_logged is not None:
            self.on_logged(step)


def write_tracker(run_dir: Path, step: int | None) -> None:
    """Point verl's tracker at ``step`` (None: no checkpoint yet) atomically: a temporary file renamed."""
    tracker = Path(run_dir) / TRACKER
    if step is None:
        tracker.unlink(missing_ok=True)
        return
    tmp = tracker.with_name(f".{TRACKER}.tmp{os.getpid()}")
    with tmp.open("w") as f:
        f.write(str(step))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, tracker)


def read_tracker(run_dir: Path) -> int | None:
    try:
        return int((Path(run_dir) / TRACKER).read_text())
    except (OSError, ValueError):
        return None


def repair_tracker(run_dir: Path) -> None:
    """A tracker file that does not parse (verl rewrites it in place; a kill can tear it) is pointed at the
    newest complete checkpoint: a ``global_step_K`` with ``data.pt``, which verl writes after the actor's files
    and before the tracker."""
    tracker = Path(run_dir) / TRACKER
    if not tracker.exists() or read_tracker(run_dir) is not None:
        return
    complete = [int(p.name.removeprefix("global_step_")) for p in Path(run_dir).glob("global_step_*")
                if p.name.removeprefix("global_step_").isdigit() and (p / "data.pt").is_file()]
    write_tracker(run_dir, max(complete) if complete else None)


class StopAfterStep(Exception):  # noqa: N818 (a signal to leave fit, not an error)
    """Raised at the start of the step after the one SIGTERM was seen in (and saved)."""


class ResumableTrainer:
    """Mixed in before ``RayPPOTrainer`` (see the module's docstring)."""

    config: Any
    global_steps: int
    total_training_steps: int

    _stopping = False
    _pending_commit: int | None = None
    _stop_flag: Any = None

    # -- where things are -------------------------------------------------------------------------------
    def _run_dir(self) -> Path:
        return Path(os.path.abspath(self.config.trainer.default_local_dir))

    def _metrics_file(self) -> Path | None:
        loggers = self.config.trainer.logger
        if "file" not in ([loggers] if isinstance(loggers, str) else list(loggers or [])):
            return None
        return file_logger_path(self.config.trainer.project_name, self.config.trainer.experiment_name)

    # -- the loop -----------------------------------------------------------------------------------------
    def fit(self) -> None:
        tracking.FileLogger = partial(AppendingFileLogger, on_logged=self._commit_checkpoint)
        try:
            self._stop_flag = ray.get_actor(STOP_FLAG)
        except ValueError:  # started without StoppableRunner: no SIGTERM handling
            self._stop_flag = None
        try:
            super().fit()  # type: ignore[misc]
        except StopAfterStep:
            self._shutdown_dump_executor()  # type: ignore[attr-defined]
            print(f"stopped after step {self.global_steps - 1} (SIGTERM): "
                  f"{self._run_dir() / f'global_step_{self.global_steps - 1}'}; the same command resumes", flush=True)

    def _load_checkpoint(self) -> Any:
        repair_tracker(self._run_dir())
        result = super()._load_checkpoint()  # type: ignore[misc]
        metrics = self._metrics_file()
        if metrics is not None:
            keep_steps_through(metrics, self.global_steps)  # global_steps: the step resumed after (0: none)
        return result

    def _save_checkpoint(self) -> None:
        run_dir = self._run_dir()
        previous = read_tracker(run_dir)
        super()._save_checkpoint()  # type: ignore[misc]
        keep = self.config.trainer.get("max_actor_ckpt_to_keep")
        if self._metrics_file() is not None and (not keep or keep > 1):
            # The step becomes the latest once its metrics line is on disk (_commit_checkpoint); with
            # max_actor_ckpt_to_keep=1 verl has already removed the previous one, so it is the latest now.
            write_tracker(run_dir, previous)
            self._pending_commit = self.global_steps
        else:
            write_tracker(run_dir, self.global_steps)  # verl's own write, redone atomically

    def _commit_checkpoint(self, logged_step: int) -> None:
        if self._pending_commit is not None and self._pending_commit <= logged_step:
            write_tracker(self._run_dir(), self._pending_commit)
            self._pending_commit = None

    def _update_actor(self, batch: Any) -> Any:
        output = super()._update_actor(batch)  # type: ignore[misc]
        if self._stop_flag is not None and ray.get(self._stop_flag.is_set.remote()):
            self._stopping = True
            save_freq = self.config.trainer.save_freq
            last = self.global_steps >= self.total_training_steps
            if not (save_freq > 0 and (last or self.global_steps % save_freq == 0)):
                self._save_checkpoint()  # verl's loop saves right after this call only on its own schedule
        return output

    def _start_profiling(self, do_profile: bool) -> None:
        if self._stopping:  # the first thing verl's loop does in a step: the step SIGTERM came in is logged
            raise StopAfterStep
        super()._start_profiling(do_profile)  # type: ignore[misc]
