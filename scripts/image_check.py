"""Build a luffy image and use it as a user would: run it, wait for health, chat, grade, stop it.

    python scripts/image_check.py                                   # Dockerfile.cpu, the tiny test checkpoint
    python scripts/image_check.py --dockerfile Dockerfile --gpus all --model DIR    # the GPU image, on a GPU box
    python scripts/image_check.py --no-build --image luffy-cpu:check --model DIR    # checks only

It uses docker when a daemon answers and podman otherwise. Podman gets this kind of machine's flags only when a
trial container fails without them (runc and cgroupfs where crun refuses hybrid cgroups, no default ulimits
where setrlimit is not permitted); a missing ``FROM`` base that no registry can give is made with debootstrap
(Debian's slim images are minbase debootstraps). When pip on this machine installs from its own sources (a
find-links folder, a file:// index), the build sees pip's configuration, those sources and the CA bundle
read-only, and TORCH_INDEX_URL is left empty; nothing of it is baked into the image.

Each check prints one line; ``--json FILE`` writes them with the timings. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from luffy_util.processes import free_port, status_of  # noqa: E402

CONTAINER_MODEL = "/models/checkpoint"
CACHE_DIR = "/home/luffy/.cache"
QUESTION = [{"role": "user", "content": "What is 20 + 22?"}]
# Written into a containers.conf when podman's defaults fail on this machine (see the module docstring).
PODMAN_MACHINE_CONF = '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'


class CheckError(RuntimeError):
    """A step that cannot go on (no container tool, a failed build): one line for the user."""


@dataclass
class Report:
    engine: str = ""
    image: str = ""
    build_s: float | None = None
    image_bytes: int | None = None
    healthy_s: float | None = None
    stop_s: float | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks[name] = bool(ok)
        if detail:
            self.notes[name] = detail
        print(f"[image] {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        return ok


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True, timeout: float | None = None,
        capture: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, capture_output=capture, text=True, timeout=timeout)
    if check and result.returncode != 0:
        tail = ((result.stderr or "") + (result.stdout or "")).strip().splitlines()[-15:]
        raise CheckError(f"{' '.join(cmd[:3])} ... exited {result.returncode}:\n" + "\n".join(tail))
    return result


class Engine:
    """docker or podman, with the flags this machine needs."""

    def __init__(self, name: str, env: dict[str, str]):
        self.name, self.env = name, env

    def __call__(self, *args: str, check: bool = True, timeout: float | None = None,
                 capture: bool = True) -> subprocess.CompletedProcess:
        return run([self.name, *args], env=self.env, check=check, timeout=timeout, capture=capture)

    def inspect(self, what: str, fmt: str) -> str:
        return self("inspect", "--format", fmt, what).stdout.strip()


def choose_engine() -> Engine:
    env = dict(os.environ)
    if shutil.which("docker") and run(["docker", "info"], check=False, timeout=30).returncode == 0:
        return Engine("docker", env)
    if not shutil.which("podman"):
        raise CheckError("no container tool: install docker (with its daemon running) or podman")
    return Engine("podman", env)


def podman_machine_flags(engine: Engine, base: str, state_dir: Path) -> None:
    """Keep podman's defaults when a trial container runs with them; else use this machine's containers.conf."""
    if engine.name != "podman":
        return
    trial = ["run", "--rm", "--network", "host", "--entrypoint", "true", base]
    if engine(*trial, check=False, timeout=120).returncode == 0:
        return
    conf = state_dir / "containers.conf"
    conf.write_text(PODMAN_MACHINE_CONF)
    engine.env["CONTAINERS_CONF"] = str(conf)
    engine(*trial, timeout=120)
    print("[image] podman: runc, cgroupfs and no default ulimits (its defaults failed here)", flush=True)


def base_image(dockerfile: Path) -> str:
    for line in dockerfile.read_text().splitlines():
        if line.strip().upper().startswith("FROM "):
            return line.split()[1]
    raise CheckError(f"{dockerfile}: no FROM line")


def debian_mirror() -> str:
    """The Debian mirror apt already uses here."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if path.exists():
            found = re.search(r"(?:URIs:|^deb)\s+(\S+/debian)\b", path.read_text(), re.MULTILINE)
            if found:
                return found.group(1)
    return "http://deb.debian.org/debian"


def ensure_base(engine: Engine, base: str) -> None:
    """The FROM image: present, pulled, or (podman, Debian slim) made with debootstrap."""
    if engine.name == "docker" or engine("image", "exists", base, check=False).returncode == 0:
        return
    match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?debian:(\w+)-slim", base)
    if not match or not shutil.which("debootstrap"):
        engine("pull", base, timeout=600)
        return
    suite = match.group(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="luffy-rootfs-") as root:
        run(["debootstrap", "--variant=minbase", suite, root, debian_mirror()], timeout=1200)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([engine.name, "import", "-", f"docker.io/library/debian:{suite}-slim"], stdin=tar.stdout,
                       env=engine.env, check=True, capture_output=True, timeout=600)
        tar.wait()
    print(f"[image] made the base {base} with debootstrap in {time.perf_counter() - t0:.0f} s", flush=True)


def host_pip_config(state_dir: Path) -> list[str]:
    """Read-only mounts that let pip in a build install from this machine's own sources (a find-links folder,
    a file:// index): pip's settings here in one pip.conf, and the folders and files they name; [] when pip
    here has no local source. The CA bundle goes beside Debian's (whose package rewrites its own)."""
    listing = run([sys.executable, "-m", "pip", "config", "list"], check=False).stdout
    settings: dict[str, str] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        if value:
            settings[key.split(".", 1)[1]] = value.strip().strip("'\"")
    local = {urlparse(v).path.rstrip("/") if v.startswith("file://") else v
             for value in settings.values() for v in value.split() if v.startswith(("file://", "/"))}
    if not any(Path(p).is_dir() for p in local):
        return []
    cert = settings.get("cert")
    if cert:
        settings["cert"] = "/etc/ssl/luffy-build-ca.crt"
        local.discard(cert)
    # A file:// index's pages link to files beside its simple/ folder.
    paths = sorted({str(Path(p).parent) if Path(p).name == "simple" else p for p in local if Path(p).exists()})
    conf = state_dir / "pip.conf"
    conf.write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(settings.items())))
    mounts = ["--volume", f"{conf}:/etc/pip.conf:ro"]
    if cert:
        mounts += ["--volume", f"{cert}:{settings['cert']}:ro"]
    for path in [p for p in paths if not any(p.startswith(q + "/") for q in paths)]:
        mounts += ["--volume", f"{path}:{path}:ro"]
    return mounts


def build(engine: Engine, dockerfile: Path, tag: str, report: Report, state_dir: Path) -> None:
    args = ["build", "-f", str(dockerfile), "-t", tag]
    if engine.name == "podman":
        mounts = host_pip_config(state_dir)
        # docker format keeps HEALTHCHECK; host networking reaches the registries from RUN steps here.
        args += ["--format", "docker", "--network", "host", "--pull=never", *mounts]
        if mounts:
            args += ["--build-arg", "TORCH_INDEX_URL="]
            print("[image] the build uses this machine's pip sources (read-only mounts)", flush=True)
    t0 = time.perf_counter()
    print(f"[image] building {tag} from {dockerfile.name} with {engine.name} ...", flush=True)
    result = engine(*args, str(REPO), check=False, capture=True)
    report.build_s = round(time.perf_counter() - t0, 1)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-20:]
        raise CheckError("the build failed:\n" + "\n".join(tail))
    report.image_bytes = int(engine("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    print(f"[image] built {tag} in {report.build_s:.0f} s, {report.image_bytes / 1e9:.2f} GB", flush=True)


def wait_healthy(port: int, timeout: float, container: str, engine: Engine) -> float | None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if status_of(f"http://127.0.0.1:{port}/health") == 200:
            return time.perf_counter() - t0
        status = engine.inspect(container, "{{.State.Status}} {{.RestartCount}}").split()
        if status[0] not in ("running", "created", "starting") or status[-1] != "0":
            return None  # exited, or restarted by its policy
        time.sleep(1)
    return None


def health_status(engine: Engine, container: str, timeout: float = 120) -> str:
    """The container's HEALTHCHECK verdict: docker runs it on its interval; podman without systemd timers
    runs it when asked."""
    t0, status = time.perf_counter(), ""
    while time.perf_counter() - t0 < timeout:
        if engine.name == "podman":
            engine("healthcheck", "run", container, check=False, timeout=60)
        status = engine.inspect(container, "{{.State.Health.Status}}")
        if status == "healthy":
            return status
        time.sleep(2)
    return status


def api_checks(port: int, api_key: str, report: Report) -> None:
    import httpx
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key, max_retries=0, timeout=300)
    reply = client.chat.completions.create(model="checkpoint", messages=QUESTION, temperature=0, max_tokens=60,
                                           extra_body={"gold": "42"})
    choice = reply.choices[0]
    extra = choice.model_extra or {}
    message_extra = choice.message.model_extra or {}
    report.check("chat: reasoning_content", bool(message_extra.get("reasoning_content")),
                 repr((message_extra.get("reasoning_content") or "")[:60]))
    report.check("chat: answer", extra.get("answer") == "42", repr(extra.get("answer")))
    grade = extra.get("grade") or {}
    report.check("chat: grade", grade.get("correct") is True, json.dumps(grade)[:120])
    graded = httpx.post(f"http://127.0.0.1:{port}/v1/grade", json={"answers": ["42", "24"], "gold": "42"},
                        headers={"Authorization": f"Bearer {api_key}"}, timeout=120)
    labels = [g.get("correct") for g in graded.json().get("grades", [])] if graded.status_code == 200 else []
    report.check("/v1/grade", labels == [True, False], f"HTTP {graded.status_code} {labels}")


# What the container tool itself writes into every container: the mount points it makes, and /etc's network files.
RUNTIME_WRITES = {"/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/models", CONTAINER_MODEL, "/run",
                  "/run/.containerenv", "/home/luffy", CACHE_DIR}


def written_outside_volumes(diff: str) -> list[str]:
    """The paths of ``docker/podman diff`` that the server wrote into the image's layers."""
    paths = [line.split(maxsplit=1) for line in diff.splitlines() if line.strip()]
    return [f"{kind} {path}" for kind, path in paths if path not in RUNTIME_WRITES]


def check_image(engine: Engine, image: str, model: Path, report: Report, gpus: str | None,
                timeout: float, extra_args: list[str]) -> None:
    """Run ``image`` detached as a user would, and check what a user sees."""
    name = f"luffy-check-{os.getpid()}"
    volume = f"{name}-cache"
    port, api_key = free_port(), "check-key"
    engine("volume", "create", volume)
    # vLLM's engine talks to its workers through /dev/shm, more than the 64 MB containers get by default.
    cmd = ["run", "-d", "--name", name, "--restart", "unless-stopped", "--shm-size", "1g",
           "-p", f"127.0.0.1:{port}:8000",
           "-v", f"{model.resolve()}:{CONTAINER_MODEL}:ro", "-v", f"{volume}:{CACHE_DIR}",
           "-e", "VLLM_CPU_KVCACHE_SPACE=1", "-e", "HF_HUB_OFFLINE=1"]
    if gpus:
        cmd += ["--gpus", gpus]
    cmd += [image, "--model", CONTAINER_MODEL, "--served-model-name", "checkpoint", "--api-key", api_key,
            "--max-model-len", "1024", *extra_args]
    try:
        engine(*cmd)
        healthy = wait_healthy(port, timeout, name, engine)
        report.healthy_s = None if healthy is None else round(healthy, 1)
        if not report.check("/health answers 200", healthy is not None,
                            f"{healthy:.0f} s after start" if healthy is not None else "never"):
            logs = engine("logs", "--tail", "60", name, check=False)
            print((logs.stdout + logs.stderr)[-6000:], flush=True)
            return
        api_checks(port, api_key, report)
        report.check("HEALTHCHECK healthy", health_status(engine, name) == "healthy")
        uid = engine("exec", name, "id", "-u", check=False).stdout.strip()
        report.check("runs as uid 1000", uid == "1000", f"uid {uid}")
        written = written_outside_volumes(engine("diff", name).stdout)
        report.check("writes nothing outside its cache volume", not written, "; ".join(written[:12]))
        t0 = time.perf_counter()
        engine("stop", "-t", "60", name, timeout=120)
        report.stop_s = round(time.perf_counter() - t0, 1)
        code = engine.inspect(name, "{{.State.ExitCode}}")
        report.check("SIGTERM: drained, exit 0", code == "0", f"exit {code} in {report.stop_s:.1f} s")
        logs = engine("logs", name, check=False)
        report.notes["log_tail"] = (logs.stdout + logs.stderr)[-2000:]
    finally:
        engine("rm", "-f", name, check=False, timeout=120)
        engine("volume", "rm", "-f", volume, check=False, timeout=60)


def tiny_checkpoint(state_dir: Path) -> Path:
    """The project's tiny think-token checkpoint (built once, cached under .cache/), copied readable for all
    (the builder writes its weights 0600, as safetensors does)."""
    from luffy_testing import tiny_model

    copy = Path(shutil.copytree(tiny_model.cached(REPO / ".cache", "tiny"), state_dir / "checkpoint"))
    for path in [copy, *copy.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def unreadable_for_others(model: Path) -> list[str]:
    """Files the image's user (uid 1000) may not read in a mounted checkpoint."""
    return [str(p) for p in [model, *model.rglob("*")] if not p.stat().st_mode & (0o005 if p.is_dir() else 0o004)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/image_check.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dockerfile", default="Dockerfile.cpu")
    parser.add_argument("--image", default=None, help="the tag to build or check (default luffy-cpu:check, "
                        "luffy:check for Dockerfile)")
    parser.add_argument("--no-build", action="store_true", help="check an image that exists")
    parser.add_argument("--model", type=Path, default=None, help="a local checkpoint, mounted read-only "
                        "(default: the tiny test checkpoint)")
    parser.add_argument("--gpus", default=None, help="passed to docker run --gpus (the GPU image)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for /health")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("serve_args", nargs="*", help="more luffy-serve flags (after --)")
    args = parser.parse_args(argv)
    dockerfile = (REPO / args.dockerfile).resolve()
    image = args.image or ("luffy-cpu:check" if dockerfile.name == "Dockerfile.cpu" else "luffy:check")
    report = Report(image=image)
    try:
        state = Path(tempfile.mkdtemp(prefix="luffy-image-"))
        engine = choose_engine()
        report.engine = engine.name
        if not args.no_build:
            base = base_image(dockerfile)
            ensure_base(engine, base)
            podman_machine_flags(engine, base, state)
            build(engine, dockerfile, image, report, state)
        else:
            podman_machine_flags(engine, image, state)
        model = args.model or tiny_checkpoint(state)
        if unreadable_for_others(model):
            raise CheckError(f"{unreadable_for_others(model)[0]} is not readable by others: the image runs as "
                             "uid 1000 (chmod -R a+rX the checkpoint)")
        check_image(engine, image, model, report, args.gpus, args.timeout, args.serve_args)
    except (CheckError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        report.check("completed", False, str(err).splitlines()[0])
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    ok = bool(report.checks) and all(report.checks.values())
    print(f"[image] {'all checks passed' if ok else 'FAILED'} ({engine_name(report)})", flush=True)
    return 0 if ok else 1


def engine_name(report: Report) -> str:
    parts = [report.engine or "no engine"]
    if report.build_s is not None:
        parts.append(f"build {report.build_s:.0f} s")
    if report.image_bytes:
        parts.append(f"{report.image_bytes / 1e9:.2f} GB")
    if report.healthy_s is not None:
        parts.append(f"healthy after {report.healthy_s:.0f} s")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
